"""hello (protocol.md §2.2–2.7): every handshake error with its code and close code, in the reference order."""

from __future__ import annotations

import time

import pytest
from django.utils import timezone

from protocol.crypto import SigningKeypair
from protocol.hello import hello_sign
from tests.support.identities import hello_for as hello_frame
from tests.support.sockets import db

pytestmark = pytest.mark.django_db(transaction=True)


async def rejected(connect, frame) -> tuple[dict, tuple[int, str]]:
    peer = await connect(None, hello=False)
    await peer.send(frame)
    error = await peer.expect("error")
    assert "_reqId" not in error
    return error, await peer.expect_close()


async def test_hello_ack_shape(make_member, connect):
    alice = await db(make_member)("alice", default_groups=[{"name": "backend"}], role_tag="lead")
    peer = await connect(alice, hello=False)
    await peer.send(hello_frame(alice, deliveryAck=True, displayName="alice-laptop"))
    ack = await peer.expect("hello_ack")
    assert len(ack["presenceId"]) == 32
    assert ack["memberDisplayName"] == "alice-laptop"
    assert ack["memberProfile"] == {"roleTag": "lead", "groups": [{"name": "backend"}], "messageMode": "push"}
    assert ack["meshPolicy"] == {"selfEditable": {"displayName": True, "roleTag": True, "groups": True, "messageMode": True}}
    assert ack["services"] == [] and ack["deliveryAck"] is True
    assert "restored" not in ack and "lastSeenAt" not in ack


async def test_restored_state_after_reconnect(make_member, connect):
    alice = await db(make_member)("alice")
    first = await connect(alice)
    await first.send({"type": "set_summary", "summary": "refactoring"})
    await first.send({"type": "join_group", "name": "backend", "role": "lead"})
    await first.send({"type": "set_stats", "stats": {"messagesIn": 3, "messagesOut": 2, "toolCalls": 5, "errors": 1}})
    await first.send({"type": "list_peers", "_reqId": "sync"})
    await first.expect("peers_list")
    await first.disconnect()
    second = await connect(alice, hello=False)
    await second.send(hello_frame(alice))
    ack = await second.expect("hello_ack")
    assert ack["restored"] is True
    assert ack["lastSummary"] == "refactoring"
    assert ack["lastSeenAt"].endswith("Z")
    assert ack["restoredGroups"] == [{"name": "backend", "role": "lead"}]
    assert ack["restoredStats"] == {"messagesIn": 3, "messagesOut": 2, "toolCalls": 5, "errors": 1}


@pytest.mark.parametrize("value", ["ABCDEF" * 10 + "ABCD", "12", 42])
async def test_bad_session_pubkey(make_member, connect, value):
    alice = await db(make_member)("alice")
    error, closed = await rejected(connect, hello_frame(alice, sessionPubkey=value, timestamp="bad"))
    assert error["code"] == "bad_session_pubkey"
    assert error["message"] == "sessionPubkey must be 64 lowercase hex chars"
    assert closed == (1008, "bad_session_pubkey")


async def test_empty_session_pubkey_is_absent(make_member, connect):
    alice = await db(make_member)("alice")
    await connect(alice, sessionPubkey="")


async def test_capacity(make_member, connect, settings):
    settings.BROKER_MAX_CONNECTIONS_PER_MESH = 1
    alice = await db(make_member)("alice")
    bob = await db(make_member)("bob")
    await connect(alice)
    error, closed = await rejected(connect, hello_frame(bob))
    assert (error["code"], error["message"]) == ("capacity", "mesh at connection capacity")
    assert closed == (1008, "capacity")


@pytest.mark.parametrize("skew", [61_000, -61_000])
async def test_timestamp_skew(make_member, connect, skew):
    alice = await db(make_member)("alice")
    stamp = int(time.time() * 1000) + skew
    _, signature = hello_sign(
        mesh_id=alice.member.mesh_id, member_id=alice.member.id, pubkey=alice.pubkey,
        secret_hex=alice.keypair.secret_hex, timestamp=stamp,
    )
    error, closed = await rejected(connect, hello_frame(alice, timestamp=stamp, signature=signature))
    assert (error["code"], error["message"]) == ("timestamp_skew", "hello rejected: timestamp_skew")
    assert closed == (1008, "timestamp_skew")


@pytest.mark.parametrize("stamp", ["1777716672345", None, 10**400, -(10**400), float("inf"), float("nan")])
async def test_timestamp_not_a_number_is_skew(make_member, connect, stamp):
    alice = await db(make_member)("alice")
    frame = hello_frame(alice, timestamp=stamp)
    error, _ = await rejected(connect, frame)
    assert error["code"] == "timestamp_skew"


async def test_float_timestamp_signed_as_integer(make_member, connect):
    alice = await db(make_member)("alice")
    frame = hello_frame(alice)
    frame["timestamp"] = float(frame["timestamp"])
    peer = await connect(alice, hello=False)
    await peer.send(frame)
    await peer.expect("hello_ack")


async def test_malformed(make_member, connect):
    alice = await db(make_member)("alice")
    error, closed = await rejected(connect, hello_frame(alice, signature="zz"))
    assert (error["code"], error["message"]) == ("malformed", "hello rejected: malformed")
    assert closed == (1008, "malformed")


async def test_bad_signature(make_member, connect):
    alice = await db(make_member)("alice")
    frame = hello_frame(alice)
    frame["memberId"] = "someoneElse"  # signed string changes
    error, closed = await rejected(connect, frame)
    assert (error["code"], closed) == ("bad_signature", (1008, "bad_signature"))


async def test_unauthorized_unknown_key(make_member, connect, mesh):
    stranger = SigningKeypair.generate()
    stamp, signature = hello_sign(mesh_id=mesh.id, member_id="x", pubkey=stranger.public_hex, secret_hex=stranger.secret_hex)
    frame = {
        "type": "hello", "meshId": mesh.id, "memberId": "x", "pubkey": stranger.public_hex, "sessionId": "s",
        "pid": 1, "cwd": "/", "timestamp": stamp, "signature": signature,
    }
    error, closed = await rejected(connect, frame)
    assert (error["code"], error["message"]) == ("unauthorized", "pubkey not found in mesh")
    assert closed == (1008, "unauthorized")


@pytest.mark.parametrize("pubkey", ["\x00", "ab\x00" + "0" * 61, "\ud800", "not-hex", 7, None])
async def test_pubkey_that_is_not_64_hex_is_malformed(make_member, connect, pubkey):
    """Given a hello whose pubkey is no 64-hex key (NUL included, which Postgres refuses in a lookup), then it is
    `malformed` (§2.4 step 5), never an internal error from the member lookup."""
    alice = await db(make_member)("alice")
    frame = {**hello_frame(alice), "pubkey": pubkey}
    error, closed = await rejected(connect, frame)
    assert (error["code"], closed) == ("malformed", (1008, "malformed"))


async def test_revoked_member(make_member, connect, mesh):
    alice = await db(make_member)("alice")
    alice.member.revoked_at = timezone.now()
    await db(alice.member.save)()
    error, closed = await rejected(connect, hello_frame(alice))
    assert error["code"] == "revoked"
    assert error["message"] == f'You\'ve been removed from "{mesh.name}". Contact the mesh owner to rejoin.'
    assert closed == (4002, "banned")


async def test_archived_mesh(make_member, connect, mesh):
    alice = await db(make_member)("alice")
    mesh.archived_at = timezone.now()
    await db(mesh.save)()
    error, closed = await rejected(connect, hello_frame(alice))
    assert error["code"] == "mesh_archived"
    assert closed[0] == 4002


async def test_missing_session_fields_is_malformed(make_member, connect):
    alice = await db(make_member)("alice")
    frame = hello_frame(alice)
    del frame["cwd"]
    error, closed = await rejected(connect, frame)
    assert (error["code"], closed[0]) == ("malformed", 1008)


async def test_no_hello_then_socket_stays_open(make_member, connect):
    alice = await db(make_member)("alice")
    peer = await connect(alice, hello=False)
    await peer.send({"type": "list_peers", "_reqId": "r1"})
    error = await peer.expect("error")
    assert error == {"type": "error", "code": "no_hello", "message": "must send hello first"}
    await peer.send(hello_frame(alice))
    await peer.expect("hello_ack")


async def test_send_right_behind_hello_is_processed_in_order(make_member, connect):
    alice = await db(make_member)("alice")
    bob = await db(make_member)("bob")
    b = await connect(bob)
    a = await connect(alice, hello=False)
    await a.send(hello_frame(alice))
    await a.send({"type": "send", "id": "x", "targetSpec": bob.pubkey, "nonce": "n", "ciphertext": "c"})
    await a.expect("hello_ack")
    assert (await a.expect("ack"))["queued"] is True
    await b.expect_push()


async def test_second_hello_is_refused(make_member, connect):
    alice = await db(make_member)("alice")
    peer = await connect(alice)
    await peer.send({**hello_frame(alice), "_reqId": "again"})
    error = await peer.expect("error")
    assert error["code"] == "already_authenticated" and error["_reqId"] == "again"


async def test_same_session_id_evicts_older_socket(make_member, connect):
    alice = await db(make_member)("alice")
    bob = await db(make_member)("bob")
    watcher = await connect(bob)
    old = await connect(alice, sessionId="same-session")
    await watcher.expect_event("peer_joined")
    new = await connect(alice, sessionId="same-session")
    assert await old.expect_close() == (1000, "session_replaced")
    await watcher.expect_event("peer_joined")  # the old socket saved no state before the new hello
    await watcher.expect_nothing(lambda f: f.get("event") == "peer_left")
    await new.send({"type": "list_peers"})
    peers = (await new.expect("peers_list"))["peers"]
    assert [p["displayName"] for p in peers] == ["bob", "alice"]


async def test_oversized_frame_closes_1009(make_member, connect):
    alice = await db(make_member)("alice")
    peer = await connect(alice)
    await peer.communicator.send_to(text_data="x" * 65_537)
    assert (await peer.expect_close())[0] == 1009


async def test_invalid_json_is_dropped(make_member, connect):
    alice = await db(make_member)("alice")
    peer = await connect(alice)
    await peer.communicator.send_to(text_data="{not json")
    await peer.communicator.send_to(bytes_data=b'{"type":"list_peers","_reqId":"b"}')
    assert (await peer.expect("peers_list"))["_reqId"] == "b"


async def test_unknown_type_after_hello(make_member, connect):
    alice = await db(make_member)("alice")
    peer = await connect(alice)
    await peer.send({"type": "mcp_deploy", "_reqId": "q1"})
    error = await peer.expect("error")
    assert error["code"] == "unknown_type" and error["_reqId"] == "q1"
    await peer.send({"type": 5})
    assert (await peer.expect("error"))["code"] == "unknown_type"
    await peer.send({"type": "list_peers"})
    assert "_reqId" not in await peer.expect("peers_list")


async def test_per_ip_connection_cap(make_member, connect, settings):
    settings.BROKER_MAX_CONNECTIONS_PER_IP = 1
    alice = await db(make_member)("alice")
    await connect(alice)
    second = await connect(None, hello=False)
    assert (await second.expect("error"))["code"] == "capacity"
    assert (await second.expect_close())[0] == 1008
    other_ip = await connect(alice, client=("10.0.0.9", 1))
    assert other_ip.closed is None
