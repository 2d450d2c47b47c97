"""What a send's ack says happened per recipient (docs/wire-extensions.md): delivered live, held by status,
queued for offline members; who wrote a push; members online or last seen; message ids by prefix."""

from __future__ import annotations

import pytest

from tests.broker.test_messaging import sent
from tests.support.sockets import db

pytestmark = pytest.mark.django_db(transaction=True)


async def test_ack_says_live_for_an_online_recipient_and_queued_for_an_offline_one(make_member, connect):
    alice, bob, carol = [await db(make_member)(name) for name in ("alice", "bob", "carol")]
    a, b = await connect(alice), await connect(bob)
    live = await sent(a, bob.pubkey, "to-bob")
    assert live["reach"] == {"live": 1, "held": 0, "queued": 0}
    assert live["recipients"] == [{"memberId": bob.member.id, "name": "bob", "state": "live"}]
    queued = await sent(a, carol.pubkey, "to-carol")
    assert queued["reach"] == {"live": 0, "held": 0, "queued": 1}
    assert queued["recipients"] == [{"memberId": carol.member.id, "name": "carol", "state": "queued"}]
    await b.expect_push(live["messageId"])


async def test_ack_says_held_when_the_recipients_status_holds_it(make_member, connect):
    alice, bob = await db(make_member)("alice"), await db(make_member)("bob")
    a, b = await connect(alice), await connect(bob)
    await b.send({"type": "set_status", "status": "dnd"})
    await b.send({"type": "list_peers"})  # one socket's frames are handled in order: dnd is stored by this reply
    await b.expect("peers_list")
    held = await sent(a, bob.pubkey, "later", priority="next")
    assert held["reach"] == {"live": 0, "held": 1, "queued": 0}
    urgent = await sent(a, bob.pubkey, "now", priority="now")
    assert urgent["reach"]["live"] == 1
    await b.expect_push(urgent["messageId"])
    await b.expect_nothing(lambda f: f.get("messageId") == held["messageId"])


async def test_broadcast_ack_counts_every_member_once(make_member, connect):
    alice, bob, carol = [await db(make_member)(name) for name in ("alice", "bob", "carol")]
    a = await connect(alice)
    await connect(bob)
    await connect(bob)  # two sessions of one member: one recipient
    ack = await sent(a, "*", "all")
    assert ack["reach"] == {"live": 1, "held": 0, "queued": 1}
    assert [(r["name"], r["state"]) for r in ack["recipients"]] == [("bob", "live"), ("carol", "queued")]


async def test_refused_send_has_no_reach(make_member, connect):
    alice = await db(make_member)("alice")
    a = await connect(alice)
    ack = await sent(a, "ab" * 32, "x")
    assert ack["queued"] is False and "reach" not in ack and "recipients" not in ack


async def test_push_names_the_senders_member_whatever_session_sent_it(make_member, connect):
    alice, bob = await db(make_member)("alice"), await db(make_member)("bob")
    b = await connect(bob)
    a = await connect(alice, sessionPubkey="cd" * 32)
    ack = await sent(a, bob.pubkey, "hello")
    push = await b.expect_push(ack["messageId"])
    assert push["senderPubkey"] == "cd" * 32 and push["senderMemberId"] == alice.member.id


async def test_queued_push_names_the_sender_after_its_session_is_gone(make_member, connect):
    alice, bob = await db(make_member)("alice"), await db(make_member)("bob")
    a = await connect(alice)
    ack = await sent(a, bob.pubkey, "while you were out")
    await a.disconnect()
    b = await connect(bob)
    assert (await b.expect_push(ack["messageId"]))["senderMemberId"] == alice.member.id


async def test_members_list_says_who_is_online_and_when_the_others_were_last_seen(make_member, connect):
    alice, bob, carol = [await db(make_member)(name) for name in ("alice", "bob", "carol")]
    gone = await connect(bob)
    await gone.disconnect()
    a = await connect(alice)
    await a.send({"type": "list_members", "_reqId": "m"})
    members = {m["displayName"]: m for m in (await a.expect("members_list"))["members"]}
    assert members["alice"]["online"] is True
    assert members["bob"]["online"] is False and members["bob"]["lastSeenAt"]
    assert members["carol"]["online"] is False and members["carol"]["lastSeenAt"] is None


async def test_message_status_takes_a_unique_prefix(make_member, connect):
    alice, bob = await db(make_member)("alice"), await db(make_member)("bob")
    a = await connect(alice)
    ack = await sent(a, bob.pubkey, "x")
    for ref, expected in ((ack["messageId"], "message_status_result"), (ack["messageId"][:8], "message_status_result")):
        await a.send({"type": "message_status", "messageId": ref, "_reqId": ref})
        reply = await a.expect(lambda f, r=ref: f.get("_reqId") == r)
        assert reply["type"] == expected and reply["messageId"] == ack["messageId"]
    assert reply["recipients"][0]["memberId"] == bob.member.id
    for ref in (ack["messageId"][:5], ack["messageId"][:8].swapcase() if ack["messageId"][:8].swapcase() != ack["messageId"][:8] else "zzzzzzzz"):
        await a.send({"type": "message_status", "messageId": ref, "_reqId": "r-" + ref})
        reply = await a.expect(lambda f, r=ref: f.get("_reqId") == "r-" + r)
        assert reply["type"] == "error" and reply["code"] == "not_found"


async def test_message_status_refuses_an_ambiguous_prefix(make_member, connect):
    from broker.models import Message

    alice = await db(make_member)("alice")
    a = await connect(alice)

    def two_messages_sharing_a_prefix():
        for tail in ("a" * 24, "b" * 24):
            Message.objects.create(id="Zq9xZq9x" + tail, mesh_id=alice.member.mesh_id, sender_member=alice.member,
                                   sender_pubkey=alice.pubkey, target_spec="*", nonce="n", ciphertext="c")

    await db(two_messages_sharing_a_prefix)()
    await a.send({"type": "message_status", "messageId": "Zq9xZq9x", "_reqId": "amb"})
    reply = await a.expect(lambda f: f.get("_reqId") == "amb")
    assert reply["type"] == "error" and reply["code"] == "ambiguous"
    await a.send({"type": "message_status", "messageId": "Zq9xZq9xa", "_reqId": "one"})
    assert (await a.expect(lambda f: f.get("_reqId") == "one"))["messageId"] == "Zq9xZq9x" + "a" * 24
