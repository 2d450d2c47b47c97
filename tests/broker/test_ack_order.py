"""§3.8 / §9 item 4: every sender hears its ack before any recipient gets the push. Observed where it happens:
at the ASGI `send` every socket of the worker writes through (a recorder around the application), so the
order is the broker's own write order, not the order two communicators' queues happen to be read in."""

from __future__ import annotations

import asyncio
import json

import pytest

from tests.support.sockets import db, open_socket, shutdown_broker

pytestmark = pytest.mark.django_db(transaction=True)


class WriteRecorder:
    """Wraps the ASGI application: every frame any socket is sent, in one list, tagged with its socket."""

    def __init__(self, application):
        self.application = application
        self.writes: list[tuple[int, dict]] = []

    async def __call__(self, scope, receive, send):
        socket_number = id(scope)

        async def recording_send(message):
            if message.get("type") == "websocket.send":
                self.writes.append((socket_number, message))
            await send(message)

        return await self.application(scope, receive, recording_send)

    def frames(self):
        return [(sock, json.loads(message["text"])) for sock, message in self.writes]


async def test_a_batch_acks_every_sender_before_any_recipient_gets_a_push(make_member, settings):
    """Given three senders whose sends share one batch (a long batch window) and one recipient, when they send,
    then in the worker's write order every ack of the batch comes before the first push of the batch."""
    from claudemesh.asgi import application

    settings.BROKER_BATCH_MS = 150.0
    recorder = WriteRecorder(application)
    members = [await db(make_member)(name) for name in ("ann", "ben", "cat", "rex")]
    *senders, recipient = members
    sockets = [await open_socket(member, application=recorder) for member in members]
    try:
        for number, (member, sock) in enumerate(zip(senders, sockets, strict=False)):
            await sock.send({"type": "send", "id": f"s{number}", "targetSpec": recipient.pubkey, "nonce": "n", "ciphertext": member.member.display_name})
        for number, sock in enumerate(sockets[:3]):
            assert (await sock.expect(lambda f, n=number: f.get("type") == "ack" and f.get("id") == f"s{n}"))["queued"]
        pushes = [await sockets[3].expect_push() for _ in senders]
        sent = {push["messageId"] for push in pushes}
        order = [
            ("ack" if frame["type"] == "ack" else "push", frame["messageId"])
            for _, frame in recorder.frames()
            if frame.get("messageId") in sent and frame["type"] in ("ack", "push")
        ]
        assert sorted(kind for kind, _ in order) == ["ack"] * 3 + ["push"] * 3, order
        last_ack = max(index for index, (kind, _) in enumerate(order) if kind == "ack")
        first_push = min(index for index, (kind, _) in enumerate(order) if kind == "push")
        assert last_ack < first_push, order
    finally:
        for sock in sockets:
            await sock.close()
        await asyncio.wait_for(shutdown_broker(), 20)
