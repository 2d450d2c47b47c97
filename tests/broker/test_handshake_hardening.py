"""Who may say hello as what: a session key belongs to its first member, a sessionId replaces only its own
member's session, a signed hello is accepted once, and one member holds at most its share of the mesh."""

from __future__ import annotations

import pytest

from broker.models import SessionKey
from protocol.crypto import SigningKeypair
from tests.support.identities import hello_for
from tests.support.sockets import db

pytestmark = pytest.mark.django_db(transaction=True)


def send_frame(target: str, text: str) -> dict:
    return {"type": "send", "id": f"id-{text}", "targetSpec": target, "nonce": "n", "ciphertext": text}


async def refused(connect, frame) -> tuple[dict, tuple[int, str]]:
    peer = await connect(None, hello=False)
    await peer.send(frame)
    return await peer.expect("error"), await peer.expect_close()


async def test_another_members_live_session_key_is_refused(make_member, connect):
    """Given alice online with a session key, when mallory says hello declaring that key, then she is refused with
    a clear error, and a DM to the key still reaches alice with alice's key as sender key of her replies."""
    alice, mallory, carol = [await db(make_member)(name) for name in ("alice", "mallory", "carol")]
    session = SigningKeypair.generate()
    a = await connect(alice, sessionPubkey=session.public_hex)
    error, closed = await refused(connect, hello_for(mallory, sessionPubkey=session.public_hex))
    assert error["code"] == "session_pubkey_taken" and "another member" in error["message"]
    assert closed == (1008, "session_pubkey_taken")
    c = await connect(carol)
    await c.send(send_frame(session.public_hex, "for-alice"))
    ack = await c.expect("ack")
    assert (await a.expect_push(ack["messageId"]))["ciphertext"] == "for-alice"


async def test_session_key_stays_its_first_members_after_she_leaves(make_member, connect):
    alice, mallory = await db(make_member)("alice"), await db(make_member)("mallory")
    session = SigningKeypair.generate()
    a = await connect(alice, sessionPubkey=session.public_hex)
    await a.disconnect()
    error, _ = await refused(connect, hello_for(mallory, sessionPubkey=session.public_hex))
    assert error["code"] == "session_pubkey_taken"
    again = await connect(alice, sessionPubkey=session.public_hex)  # her own key: still hers
    assert again.closed is None
    owners = await db(lambda: list(SessionKey.objects.values_list("member_id", flat=True)))()
    assert owners == [alice.member.id]


async def test_another_members_member_key_is_not_a_session_key(make_member, connect):
    alice, mallory = await db(make_member)("alice"), await db(make_member)("mallory")
    error, _ = await refused(connect, hello_for(mallory, sessionPubkey=alice.pubkey))
    assert error["code"] == "session_pubkey_taken"


async def test_another_members_session_id_does_not_replace_it(make_member, connect):
    """[PY] §2.5: replacement by sessionId holds within one member only."""
    alice, mallory = await db(make_member)("alice"), await db(make_member)("mallory")
    a = await connect(alice, sessionId="shown-by-list-peers")
    m = await connect(mallory, sessionId="shown-by-list-peers")
    await a.expect_nothing(lambda f: f.get("type") == "__closed__", wait=0.5)
    await m.send({"type": "list_peers"})
    names = sorted(p["displayName"] for p in (await m.expect("peers_list"))["peers"])
    assert names == ["alice", "mallory"]  # alice is still there
    await m.send(send_frame(alice.pubkey, "still-reachable"))
    ack = await m.expect("ack")
    assert (await a.expect_push(ack["messageId"]))["ciphertext"] == "still-reachable"


async def test_a_replayed_hello_is_refused(make_member, connect):
    """Given a hello captured in flight, when it is replayed (new sessionId and session key, same signature), then
    it is refused and the victim keeps its DMs."""
    alice, bob = await db(make_member)("alice"), await db(make_member)("bob")
    captured = hello_for(alice, sessionId="real")
    a = await connect(None, hello=False)
    await a.send(captured)
    await a.expect("hello_ack")
    replay = {**captured, "sessionId": "replayed", "sessionPubkey": SigningKeypair.generate().public_hex}
    error, closed = await refused(connect, replay)
    assert error["code"] == "replayed" and closed == (1008, "replayed")
    b = await connect(bob)
    await b.send(send_frame(alice.pubkey, "for-alice"))
    ack = await b.expect("ack")
    assert (await a.expect_push(ack["messageId"]))["ciphertext"] == "for-alice"


async def test_a_fresh_hello_of_the_same_member_is_accepted(make_member, connect):
    alice = await db(make_member)("alice")
    await connect(alice, sessionId="one")
    second = await connect(alice, sessionId="two")  # signed at another moment: a different signature
    assert second.closed is None


async def test_one_member_cannot_take_the_whole_mesh(make_member, connect, settings):
    settings.BROKER_MAX_CONNECTIONS_PER_MESH = 5
    settings.BROKER_MAX_CONNECTIONS_PER_MEMBER = 2
    hog, bob = await db(make_member)("hog"), await db(make_member)("bob")
    await connect(hog, sessionId="h1")
    await connect(hog, sessionId="h2")
    error, closed = await refused(connect, hello_for(hog, sessionId="h3"))
    assert error["code"] == "member_capacity" and "2 live connections" in error["message"]
    assert closed == (1008, "member_capacity")
    again = await connect(hog, sessionId="h2")  # a reconnect of one of its sessions replaces it: not refused
    assert again.closed is None
    assert (await connect(bob)).closed is None


async def test_member_cap_stays_below_the_mesh_cap(make_member, connect, settings):
    settings.BROKER_MAX_CONNECTIONS_PER_MESH = 3
    settings.BROKER_MAX_CONNECTIONS_PER_MEMBER = 50
    hog, bob = await db(make_member)("hog"), await db(make_member)("bob")
    await connect(hog, sessionId="h1")
    await connect(hog, sessionId="h2")
    error, _ = await refused(connect, hello_for(hog, sessionId="h3"))
    assert error["code"] == "member_capacity"
    assert (await connect(bob)).closed is None
