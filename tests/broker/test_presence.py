"""list_peers, set_* and system events (protocol.md §3.9, §4)."""

from __future__ import annotations

import pytest

from protocol.crypto import SigningKeypair
from tests.support.sockets import db

pytestmark = pytest.mark.django_db(transaction=True)


async def peers(peer) -> list[dict]:
    await peer.send({"type": "list_peers", "_reqId": "lp"})
    reply = await peer.expect("peers_list")
    assert reply["_reqId"] == "lp"
    return reply["peers"]


async def test_list_peers_fields_and_order(make_member, connect):
    alice = await db(make_member)("alice")
    bob = await db(make_member)("bob")
    session = SigningKeypair.generate()
    a = await connect(
        alice, sessionPubkey=session.public_hex, displayName="alice-laptop", hostname="h1", peerType="ai",
        channel="claude-code", model="opus", sessionId="sess-a", cwd="/work/a",
    )
    await connect(bob)
    listed = await peers(a)
    assert [p["displayName"] for p in listed] == ["alice-laptop", "bob"]
    me = listed[0]
    assert me["pubkey"] == session.public_hex and me["memberPubkey"] == alice.pubkey
    assert me["status"] == "idle" and me["summary"] is None and me["groups"] == []
    assert me["sessionId"] == "sess-a" and me["cwd"] == "/work/a" and me["connectedAt"].endswith("Z")
    assert (me["hostname"], me["peerType"], me["channel"], me["model"]) == ("h1", "ai", "claude-code", "opus")
    assert me["visible"] is True and "stats" not in me and "profile" not in me
    assert listed[1]["pubkey"] == bob.pubkey == listed[1]["memberPubkey"]


async def test_setters_have_no_reply_and_show_in_peers(make_member, connect):
    alice = await db(make_member)("alice")
    a = await connect(alice)
    await a.send({"type": "set_status", "status": "working"})
    await a.send({"type": "set_summary", "summary": "writing tests"})
    await a.send({"type": "set_stats", "stats": {"messagesIn": 1, "toolCalls": 2, "bogus": 3}})
    await a.send({"type": "join_group", "name": "eng", "role": "lead"})
    await a.send({"type": "join_group", "name": "eng"})
    await a.send({"type": "join_group", "name": "ops"})
    await a.send({"type": "leave_group", "name": "ops"})
    await a.send({"type": "set_profile", "title": "tester", "capabilities": ["py"], "_reqId": "pr"})
    ack = await a.expect("ack")
    assert ack == {"type": "ack", "id": "pr", "messageId": "", "queued": False, "_reqId": "pr"}
    [me] = await peers(a)
    assert me["status"] == "working" and me["summary"] == "writing tests"
    assert me["stats"] == {"messagesIn": 1, "toolCalls": 2}
    assert me["groups"] == [{"name": "eng"}]
    assert me["profile"] == {"title": "tester", "capabilities": ["py"]}
    await a.send({"type": "set_status", "status": "bogus"})
    await a.expect_nothing()


async def test_set_stats_ignores_counters_the_database_cannot_store(make_member, connect):
    """Given a peer, when it reports NaN/Infinity counters (Python's JSON parser takes them, JSON columns do
    not), then those counters are dropped, the finite ones kept, and the socket keeps working."""
    alice = await db(make_member)("alice")
    a = await connect(alice)
    inf, nan = float("inf"), float("nan")  # json.dumps writes them as Infinity / NaN, as a hostile client may
    await a.send({"type": "set_stats", "stats": {"messagesIn": inf, "toolCalls": nan, "errors": -inf, "uptime": 7}})
    [me] = await peers(a)
    assert me["stats"] == {"uptime": 7}


async def test_visibility(make_member, connect):
    alice = await db(make_member)("alice")
    bob = await db(make_member)("bob")
    a1, a2 = await connect(alice), await connect(alice)
    b = await connect(bob)
    await a1.send({"type": "set_visible", "visible": False})
    ack = await a1.expect("ack")
    assert ack == {"type": "ack", "id": "", "messageId": "", "queued": False}
    hidden = await b.expect_event("peer_hidden")
    assert hidden["eventData"] == {"name": "alice", "pubkey": alice.pubkey}
    await a2.expect_event("peer_hidden")  # the same member's other sessions hear it too
    assert len(await peers(b)) == 2
    assert len(await peers(a2)) == 3  # own member's hidden sessions stay visible to it
    await a1.send({"type": "set_visible", "visible": True, "_reqId": "v"})
    assert (await a1.expect("ack"))["id"] == "v"
    await b.expect_event("peer_visible")


async def test_join_and_leave_events(make_member, connect):
    alice = await db(make_member)("alice")
    bob = await db(make_member)("bob")
    a = await connect(alice)
    b = await connect(bob, groups=[{"name": "eng", "role": "lead"}])
    joined = await a.expect_event("peer_joined")
    assert joined["senderPubkey"] == "system" and joined["nonce"] == "" and joined["ciphertext"] == ""
    assert joined["subtype"] == "system" and joined["priority"] == "low" and len(joined["messageId"]) == 36
    assert joined["eventData"] == {"name": "bob", "pubkey": bob.pubkey, "groups": [{"name": "eng", "role": "lead"}]}
    b2 = await connect(bob)
    await a.expect_event("peer_joined")
    await b.expect_nothing(lambda f: f.get("event") == "peer_joined")  # same member: no event
    await b2.disconnect()
    # [PY] bob is still there under the same key (b): nobody is told he left
    await a.expect_nothing(lambda f: f.get("event") == "peer_left")
    await b.disconnect()
    left = await a.expect_event("peer_left")
    assert left["eventData"] == {"name": "bob", "pubkey": bob.pubkey}
    await connect(bob)
    returned = await a.expect_event("peer_returned")
    assert returned["eventData"]["name"] == "bob" and returned["eventData"]["lastSeenAt"].endswith("Z")
    assert len(await peers(a)) == 2


async def test_revoking_a_member_closes_its_sockets(make_member, connect, owner_actor):
    from meshes import services

    alice = await db(make_member)("alice")
    bob = await db(make_member)("bob")
    a = await connect(alice)
    b = await connect(bob)
    await db(services.member_remove)(actor=owner_actor, member_id=bob.member.id)
    error = await b.expect("error")
    assert error["code"] == "revoked"
    assert await b.expect_close() == (4002, "banned")
    await a.expect_event("peer_left")


async def test_archiving_a_mesh_closes_every_socket(make_member, connect, owner_actor):
    from meshes import services

    alice = await db(make_member)("alice")
    a = await connect(alice)
    await db(services.mesh_archive)(actor=owner_actor)
    assert (await a.expect("error"))["code"] == "mesh_archived"
    assert (await a.expect_close())[0] == 4002


async def test_presence_stays_out_of_the_audit_chain(make_member, connect):
    """Joining and leaving is traffic (the live view shows it), not governance: the chain does not grow with it."""
    from meshes.models import AuditEvent

    alice = await db(make_member)("alice")

    def count() -> int:
        return AuditEvent.objects.filter(mesh_id=alice.member.mesh_id).count()

    before = await db(count)()
    for _ in range(3):
        sock = await connect(alice)
        await sock.disconnect()
    assert await db(count)() == before
