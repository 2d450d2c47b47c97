"""Connection behaviour that needs no broker: a real socket to a port nobody listens on."""

from __future__ import annotations

import asyncio

import pytest

from peer.config import MeshEntry
from peer.connection import MeshConnection
from peer.connection_terms import ConnectionUnavailable, HelloOptions
from protocol.crypto import SigningKeypair
from protocol.envelope import seal_plaintext
from tests.support.servers import free_port


def unreachable_mesh() -> MeshEntry:
    keys = SigningKeypair.generate()
    return MeshEntry(mesh_id="m" * 32, member_id="u" * 32, slug="nowhere", name="nowhere", pubkey=keys.public_hex,
                     secret_key=keys.secret_hex, broker_url=f"ws://127.0.0.1:{free_port()}/ws", joined_at="")


def test_send_while_disconnected_times_out_with_the_reason():
    async def scenario():
        connection = MeshConnection(unreachable_mesh(), HelloOptions(display_name="x", session_id="s"))
        session_key = connection.session.public_hex
        connection.start()
        try:
            with pytest.raises(ConnectionUnavailable, match="message not sent.*cannot connect"):
                await connection.send("*", seal_plaintext("hi"), timeout=1.5)
            with pytest.raises(ConnectionUnavailable, match="not connected to the broker .* within 1s"):
                await connection.wait_open(1)
            assert connection.state in ("connecting", "reconnecting")
            assert connection.session.public_hex == session_key  # kept across attempts
            assert connection._sends == {}  # a timed-out send is dropped, never written later
        finally:
            await connection.close()
        assert connection.state == "closed"

    asyncio.run(scenario())


def test_keyring_events_are_handled_by_the_client_and_never_reach_listeners(tmp_path):
    """`key_requested` / `key_granted` are the client's business: not stored, not shown to a person or to Claude."""
    from peer.client import MeshClient
    from peer.inbox import Inbox

    async def scenario():
        inbox = Inbox(tmp_path)
        client = MeshClient(unreachable_mesh(), HelloOptions(display_name="x", session_id="s"), inbox=inbox)
        heard = []

        async def listener(_client, message):
            heard.append(message)

        client.listeners.append(listener)
        base = {"type": "push", "meshId": "m" * 32, "senderPubkey": "system", "nonce": "", "ciphertext": "",
                "createdAt": "2026-12-02T00:00:00.000Z", "subtype": "system", "priority": "now"}
        await client._on_push({**base, "messageId": "e1", "event": "key_granted", "eventData": {"scope": "mesh", "epoch": 1}})
        await client._on_push({**base, "messageId": "e2", "event": "peer_joined", "eventData": {"name": "bob", "pubkey": "ab" * 32}})
        assert [m.event for m in heard] == ["peer_joined"]
        assert client.keys._granted["mesh"].is_set()  # a sender waiting for this scope's key wakes up
        inbox.close()

    asyncio.run(scenario())
