"""The reference's two-peer smoke scenario (protocol.md Appendix B, §9): opaque payloads, ack before push."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.django_db(transaction=True)


async def test_two_peer_smoke(make_member, connect):
    alice = await database(make_member, "alice")
    bob = await database(make_member, "bob")
    a = await connect(alice)
    b = await connect(bob)
    await a.send(
        {"type": "send", "id": "smoke-1", "targetSpec": bob.pubkey, "priority": "next", "nonce": "fake-nonce-aaa", "ciphertext": "hello-from-a"}
    )
    ack = await a.expect("ack")
    assert ack["id"] == "smoke-1" and ack["queued"] is True and len(ack["messageId"]) == 32
    push = await b.expect_push(ack["messageId"])
    assert push["ciphertext"] == "hello-from-a"
    assert push["nonce"] == "fake-nonce-aaa"
    assert push["senderPubkey"] == alice.pubkey
    assert push["meshId"] == alice.member.mesh_id
    assert push["priority"] == "next"
    assert push["createdAt"].endswith("Z") and len(push["createdAt"]) == 24
    assert set(push) == {"type", "messageId", "meshId", "senderPubkey", "senderMemberId", "priority", "nonce", "ciphertext", "createdAt"}


async def database(fn, *args, **kwargs):
    from channels.db import database_sync_to_async

    return await database_sync_to_async(fn)(*args, **kwargs)
