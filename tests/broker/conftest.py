"""Broker test helpers: real ed25519 members, real signatures, real WebSocket frames (in-process ASGI)."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator

from meshes.models import Member, Role
from protocol.crypto import SigningKeypair
from protocol.hello import hello_sign


@dataclass
class Identity:
    member: Member
    keypair: SigningKeypair

    @property
    def pubkey(self) -> str:
        return self.keypair.public_hex


@pytest.fixture
def make_member(mesh):
    def make(name: str = "peer", role: str = Role.MEMBER, **fields) -> Identity:
        keypair = SigningKeypair.generate()
        member = Member.objects.create(
            mesh=mesh, pubkey=keypair.public_hex, display_name=name, role=role, **fields
        )
        return Identity(member, keypair)

    return make


def hello_frame(identity: Identity, **overrides) -> dict[str, Any]:
    member = identity.member
    stamp, signature = hello_sign(
        mesh_id=member.mesh_id, member_id=member.id, pubkey=identity.pubkey, secret_hex=identity.keypair.secret_hex
    )
    frame = {
        "type": "hello",
        "meshId": member.mesh_id,
        "memberId": member.id,
        "pubkey": identity.pubkey,
        "sessionId": f"s-{uuid.uuid4().hex[:12]}",
        "pid": 4242,
        "cwd": "/tmp/project",
        "timestamp": stamp,
        "signature": signature,
    }
    frame.update(overrides)
    return frame


@dataclass
class WsPeer:
    """A test client: keeps frames it did not ask for yet, so order-independent expectations are easy."""

    communicator: WebsocketCommunicator
    identity: Identity | None = None
    inbox: list[dict[str, Any]] = field(default_factory=list)
    closed: tuple[int, str] | None = None

    async def send(self, frame: dict[str, Any]) -> None:
        await self.communicator.send_to(text_data=json.dumps(frame))

    async def _read(self, timeout: float) -> dict[str, Any]:
        # Poll instead of receive_output(timeout): asgiref cancels the application when that times out.
        deadline = time.monotonic() + timeout
        while self.communicator.output_queue.empty():
            if self.communicator.future.done():
                self.communicator.future.result()
                raise TimeoutError
            if time.monotonic() >= deadline:
                raise TimeoutError
            await asyncio.sleep(0.005)
        output = await self.communicator.receive_output(1)
        if output["type"] == "websocket.close":
            self.closed = (output.get("code"), output.get("reason", ""))
            return {"type": "__closed__", "code": output.get("code"), "reason": output.get("reason", "")}
        return json.loads(output["text"])

    async def expect(self, predicate, timeout: float = 3.0) -> dict[str, Any]:
        if isinstance(predicate, str):
            wanted = predicate
            predicate = lambda f: f.get("type") == wanted  # noqa: E731
        for index, frame in enumerate(self.inbox):
            if predicate(frame):
                return self.inbox.pop(index)
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no matching frame within {timeout}s; inbox={self.inbox}")
            try:
                frame = await self._read(remaining)
            except TimeoutError:
                raise AssertionError(f"no matching frame within {timeout}s; inbox={self.inbox}") from None
            if predicate(frame):
                return frame
            self.inbox.append(frame)
            if frame["type"] == "__closed__":
                raise AssertionError(f"socket closed {frame}; inbox={self.inbox}")

    async def expect_push(self, message_id: str | None = None, timeout: float = 3.0) -> dict[str, Any]:
        return await self.expect(
            lambda f: f.get("type") == "push"
            and f.get("subtype") != "system"
            and (message_id is None or f.get("messageId") == message_id),
            timeout,
        )

    async def expect_event(self, event: str, timeout: float = 3.0) -> dict[str, Any]:
        return await self.expect(lambda f: f.get("type") == "push" and f.get("event") == event, timeout)

    async def expect_nothing(self, predicate=None, wait: float = 0.3) -> None:
        predicate = predicate or (lambda f: True)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            try:
                frame = await self._read(max(deadline - time.monotonic(), 0.01))
            except TimeoutError:
                break
            self.inbox.append(frame)
        hits = [f for f in self.inbox if predicate(f)]
        assert not hits, f"unexpected frames: {hits}"

    async def expect_close(self, timeout: float = 3.0) -> tuple[int, str]:
        if self.closed:
            return self.closed
        await self.expect("__closed__", timeout)
        return self.closed

    async def disconnect(self) -> None:
        await self.communicator.disconnect()


@pytest.fixture
async def connect():
    from claudemesh.asgi import application

    peers: list[WsPeer] = []

    async def open_socket(identity: Identity | None = None, *, hello: bool = True, client=("127.0.0.1", 5555), **overrides) -> WsPeer:
        communicator = WebsocketCommunicator(application, "/ws")
        communicator.scope["client"] = client
        connected, _ = await communicator.connect()
        assert connected
        peer = WsPeer(communicator, identity)
        peers.append(peer)
        if hello and identity is not None:
            await peer.send(hello_frame(identity, **overrides))
            await peer.expect("hello_ack")
        return peer

    yield open_socket
    for peer in peers:
        try:
            await peer.communicator.disconnect()
        except BaseException:  # noqa: S110 - the application already finished (closed by the broker)
            pass
    from django.db import connections

    from broker.worker import stop_current_worker

    await stop_current_worker()
    # channels-redis binds its receive machinery to the event loop that first used it; each test has its own
    # loop, so the next test gets a fresh layer object (a server process has one loop for its lifetime).
    from channels.layers import channel_layers

    channel_layers.backends.pop("default", None)
    # The DB thread's connection must not outlive the test (Postgres refuses to drop a test DB in use).
    await database_sync_to_async(connections.close_all)()


def db(fn):
    return database_sync_to_async(fn)
