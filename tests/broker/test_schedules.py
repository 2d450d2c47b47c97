"""Scheduled messages (protocol.md §5.7 with §10 item 7's fixes): reminders to oneself fire, with or without the
scheduling connection; a reminder nobody is connected for waits in the member's queue and keeps its subtype;
crons in the spec's dialect and a named time zone re-arm; each due time fires once."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

from broker.models import Message
from broker.services.reminders import reminders_fire_due
from meshes.models import ScheduledMessage
from protocol.crypto import SigningKeypair, box_decrypt, box_encrypt
from protocol.encoding import b64_decode
from tests.support.sockets import db

pytestmark = pytest.mark.django_db(transaction=True)


async def request(sock, frame: dict, reply_type: str) -> dict:
    req_id = f"r-{uuid.uuid4().hex[:8]}"
    await sock.send({**frame, "_reqId": req_id})
    return await sock.expect(lambda f: f.get("_reqId") == req_id and f["type"] in (reply_type, "error"))


def soon(ms: int = 300) -> int:
    return int(timezone.now().timestamp() * 1000) + ms


async def test_a_reference_reminder_to_its_own_session_fires_as_a_reminder_push(make_member, connect):
    alice = await db(make_member)("alice")
    session = SigningKeypair.generate()
    a = await connect(alice, sessionPubkey=session.public_hex)
    at = soon()
    ack = await request(a, {"type": "schedule", "to": session.public_hex, "message": "stand up", "deliverAt": at},
                        "scheduled_ack")
    assert uuid.UUID(ack["scheduledId"]).version == 4 and ack["deliverAt"] == at and "cron" not in ack
    push = await a.expect(lambda f: f.get("type") == "push" and f.get("subtype") == "reminder", timeout=8)
    assert (push["nonce"], b64_decode(push["ciphertext"]), push["priority"]) == ("", b"stand up", "now")
    assert push["senderPubkey"] == session.public_hex
    entry = await db(ScheduledMessage.objects.get)(id=ack["scheduledId"])
    assert entry.finished_at is not None and entry.fired_count == 1


async def test_a_reminder_from_a_gone_one_shot_session_reaches_the_members_other_session_or_waits(
    make_member, connect
):
    alice = await db(make_member)("alice")
    cli_session = SigningKeypair.generate()
    cli = await connect(alice, sessionPubkey=cli_session.public_hex, sessionId="cli-1")
    await request(cli, {"type": "schedule", "to": cli_session.public_hex, "message": "check CI", "deliverAt": soon()},
                  "scheduled_ack")
    await request(cli, {"type": "schedule", "to": cli_session.public_hex, "message": "later", "deliverAt": soon(1500)},
                  "scheduled_ack")
    await cli.close()  # the reference CLI's `remind` exits at once
    claude = await connect(alice, sessionPubkey=SigningKeypair.generate().public_hex, sessionId="claude")
    push = await claude.expect(lambda f: f.get("subtype") == "reminder", timeout=8)
    assert b64_decode(push["ciphertext"]) == b"check CI"
    await claude.close()
    await _wait_fired(2)
    back = await connect(alice, sessionPubkey=SigningKeypair.generate().public_hex, sessionId="claude-2")
    drained = await back.expect(lambda f: f.get("type") == "push" and f.get("subtype") == "reminder", timeout=8)
    assert b64_decode(drained["ciphertext"]) == b"later"  # waited in the queue, and kept its subtype


async def _wait_fired(count: int) -> None:
    for _ in range(80):  # the broker's DB thread is the test's too: wait here, not in it
        if await db(ScheduledMessage.objects.filter(fired_count__gte=1).count)() >= count:
            return
        await asyncio.sleep(0.1)
    raise AssertionError("reminders did not fire")


async def test_our_encrypted_reminder_is_stored_sealed_and_delivered_from_the_member_key(make_member, connect):
    alice, bob = await db(make_member)("alice"), await db(make_member)("bob")
    a, b = await connect(alice), await connect(bob)
    nonce, ciphertext = box_encrypt(b"review my PR", recipient_ed25519_hex=bob.pubkey,
                                    sender_secret_hex=alice.keypair.secret_hex)
    ack = await request(a, {"type": "schedule", "to": bob.pubkey, "nonce": nonce, "ciphertext": ciphertext,
                            "note": {"nonce": nonce, "ciphertext": ciphertext}, "deliverAt": soon(),
                            "subtype": "reminder"}, "scheduled_ack")
    push = await b.expect(lambda f: f.get("subtype") == "reminder", timeout=8)
    assert push["senderPubkey"] == alice.pubkey
    plain = box_decrypt(push["nonce"], push["ciphertext"], sender_ed25519_hex=push["senderPubkey"],
                        recipient_secret_hex=bob.keypair.secret_hex)
    assert plain == b"review my PR"
    row = await db(lambda: ScheduledMessage.objects.filter(id=ack["scheduledId"]).values().get())()
    assert row["message"] is None and "review" not in str(row)


async def test_cron_in_the_spec_dialect_and_a_named_time_zone_lists_cancels_and_refuses_bad_input(
    make_member, connect
):
    alice, bob = await db(make_member)("alice"), await db(make_member)("bob")
    a, b = await connect(alice), await connect(bob)
    for cron in ("0 9 * * 7", "bad", "* * * * * *", "0 9 * * MON", "0 0 31 2 *"):
        refused = await request(a, {"type": "schedule", "to": "*", "message": "x", "deliverAt": 0, "cron": cron,
                                    "recurring": True}, "scheduled_ack")
        assert refused["type"] == "error" and refused["code"] == "invalid_cron"
        assert refused["message"].startswith(f"Invalid cron expression: {cron}")
    ack = await request(a, {"type": "schedule", "to": "*", "message": "standup", "deliverAt": 0,
                            "cron": "30 9 * * 1-5", "recurring": True, "timeZone": "Europe/Berlin"}, "scheduled_ack")
    first = datetime.fromtimestamp(ack["deliverAt"] / 1000, ZoneInfo("Europe/Berlin"))
    assert (first.hour, first.minute, first.weekday() < 5) == (9, 30, True) and ack["cron"] == "30 9 * * 1-5"
    listed = await request(a, {"type": "list_scheduled"}, "scheduled_list")
    [entry] = listed["messages"]
    assert (entry["id"], entry["to"], entry["message"], entry["cron"], entry["firedCount"]) == (
        ack["scheduledId"], "*", "standup", "30 9 * * 1-5", 0
    )
    assert (await request(b, {"type": "list_scheduled"}, "scheduled_list"))["messages"] == []
    theirs = await request(b, {"type": "cancel_scheduled", "scheduledId": ack["scheduledId"]}, "cancel_scheduled_ack")
    assert theirs["ok"] is False  # not bob's to cancel
    mine = await request(a, {"type": "cancel_scheduled", "scheduledId": ack["scheduledId"]}, "cancel_scheduled_ack")
    assert mine == {"type": "cancel_scheduled_ack", "scheduledId": ack["scheduledId"], "ok": True,
                    "_reqId": mine["_reqId"]}
    for frame, code in (
        ({"to": "alice", "message": "x", "deliverAt": soon()}, "invalid_args"),  # a name: refused now, not at fire time
        ({"to": "*", "message": "x", "deliverAt": "tomorrow"}, "invalid_args"),
        ({"to": "*", "message": "", "deliverAt": soon()}, "invalid_args"),
        ({"to": "*", "message": "x", "deliverAt": 0, "cron": "0 9 * * *", "timeZone": "Mars/Olympus"}, "invalid_args"),
        ({"to": "#nope", "message": "x", "deliverAt": soon()}, "topic_not_found"),
    ):
        reply = await request(a, {"type": "schedule", **frame}, "scheduled_ack")
        assert reply["type"] == "error" and reply["code"] == code, frame


async def test_each_due_time_fires_once_and_a_cron_re_arms_to_its_next_time(make_member):
    def run():
        alice = make_member("alice")
        now = timezone.now()
        cron = ScheduledMessage.objects.create(mesh_id=alice.member.mesh_id, member=alice.member, to="*",
                                               message="tick", cron="*/5 * * * *", time_zone="UTC",
                                               deliver_at=now - timedelta(minutes=30))
        one = ScheduledMessage.objects.create(mesh_id=alice.member.mesh_id, member=alice.member, to=alice.pubkey,
                                              message="once", deliver_at=now - timedelta(seconds=1))
        first = reminders_fire_due(worker_id="w1", now=now)
        again = reminders_fire_due(worker_id="w2", now=now)
        cron.refresh_from_db()
        one.refresh_from_db()
        return first, again, cron, one, now

    first, again, cron, one, now = await db(run)()
    assert first.fired == 2 and again.fired == 0  # missed cron times while down: one firing, not a storm
    assert cron.fired_count == 1 and cron.deliver_at > now and cron.deliver_at.minute % 5 == 0
    assert cron.deliver_at - now <= timedelta(minutes=5) and cron.finished_at is None
    assert one.finished_at is not None and one.fired_count == 1
    subtypes = await db(lambda: list(Message.objects.values_list("subtype", "priority")))()
    assert subtypes == [("reminder", "now")] * 2
