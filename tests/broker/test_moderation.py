"""Kick, disconnect, ban, unban and the ban list (protocol.md §5.3), and recipient grants (§7.3) on every delivery
path: the frames as the reference CLI sends them get §5.3's replies and close codes, only owners and admins may use
them, and a blocked sender reaches a recipient neither live nor through its queue."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from broker.models import Delivery, Presence
from broker.services.presence import presences_heartbeat
from meshes.models import AuditEvent, Member, Role
from tests.support.sockets import db

pytestmark = pytest.mark.django_db(transaction=True)


async def request(sock, frame: dict, reply_type: str) -> dict:
    req_id = f"r-{frame['type']}"
    await sock.send({**frame, "_reqId": req_id})
    return await sock.expect(lambda f: f.get("_reqId") == req_id and f["type"] in (reply_type, "error"))


async def send(sock, target: str, text: str) -> dict:
    send_id = f"s-{text}"
    await sock.send({"type": "send", "id": send_id, "targetSpec": target, "nonce": "n", "ciphertext": text})
    return await sock.expect(lambda f: f.get("type") == "ack" and f.get("id") == send_id)


# --- kick and disconnect ----------------------------------------------------------------------------------


async def test_kick_by_name_closes_4001_and_the_others_see_peer_left_once(make_member, connect):
    admin, bob, carol = await db(make_member)("admin", Role.ADMIN), await db(make_member)("bob"), await db(make_member)("carol")
    a, b, c = await connect(admin), await connect(bob), await connect(carol)
    ack = await request(a, {"type": "kick", "target": "bob"}, "kick_ack")
    assert ack["kicked"] == ["bob"] == ack["affected"]
    assert await b.expect_close() == (4001, "kicked")
    left = await c.expect_event("peer_left")
    assert left["eventData"]["name"] == "bob"
    await c.expect_nothing(lambda f: f.get("event") == "peer_left")
    assert await db(Presence.objects.filter(member=bob.member, disconnected_at=None).count)() == 0
    assert await db(AuditEvent.objects.filter(event_type="sessions_kicked").count)() == 1


async def test_kick_by_key_prefix_and_disconnect_all_spare_the_caller(make_member, connect):
    admin, bob, carol = await db(make_member)("admin", Role.ADMIN), await db(make_member)("bob"), await db(make_member)("carol")
    a, b, c = await connect(admin), await connect(bob), await connect(carol)
    ack = await request(a, {"type": "kick", "target": bob.pubkey[:10]}, "kick_ack")
    assert ack["kicked"] == ["bob"]
    assert (await b.expect_close())[0] == 4001
    ack = await request(a, {"type": "disconnect", "all": True}, "disconnect_ack")
    assert ack["kicked"] == ["carol"]
    assert await c.expect_close() == (1000, "disconnected")
    nobody = await request(a, {"type": "kick", "target": "nobody-here"}, "kick_ack")
    assert nobody["kicked"] == [] and a.closed is None


async def test_kick_stale_closes_only_sessions_silent_for_that_long(make_member, connect):
    admin, ghost, busy = (await db(make_member)("admin", Role.ADMIN), await db(make_member)("ghost"),
                          await db(make_member)("busy"))
    a, g, b = await connect(admin), await connect(ghost), await connect(busy)
    long_ago = timezone.now() - timedelta(minutes=10)
    await db(Presence.objects.filter(member=ghost.member).update)(last_active_at=long_ago)
    ack = await request(a, {"type": "kick", "stale": 60_000}, "kick_ack")
    assert ack["kicked"] == ["ghost"]
    assert await g.expect_close() == (4001, "kicked_stale")
    await b.expect_nothing(lambda f: f.get("type") == "__closed__")
    refused = await request(a, {"type": "kick", "stale": "soon"}, "kick_ack")
    assert (refused["type"], refused["code"]) == ("error", "invalid")


async def test_the_heartbeat_records_activity_only_for_connections_that_sent_something(make_member):
    alice, bob = await db(make_member)("alice"), await db(make_member)("bob")
    then = timezone.now() - timedelta(minutes=5)
    rows = [await db(Presence.objects.create)(mesh=m.member.mesh, member=m.member, member_pubkey=m.pubkey,
                                              session_id=m.member.display_name, display_name=m.member.display_name,
                                              worker_id="w1", last_active_at=then) for m in (alice, bob)]
    await db(presences_heartbeat)(worker_id="w1", presence_ids=[r.id for r in rows], active_ids=[rows[0].id])
    fresh = {p.id: p.last_active_at for p in await db(list)(Presence.objects.all())}
    assert fresh[rows[0].id] > then + timedelta(minutes=4) and fresh[rows[1].id] == then


async def test_members_may_not_kick_ban_unban_or_list_bans(make_member, connect):
    bob, carol = await db(make_member)("bob"), await db(make_member)("carol")
    b, c = await connect(bob), await connect(carol)
    for frame, word in (({"type": "kick", "target": "carol"}, "kicked"), ({"type": "disconnect", "all": True}, "disconnected"),
                        ({"type": "ban", "target": "carol"}, "ban"), ({"type": "unban", "target": "carol"}, "unban"),
                        ({"type": "list_bans"}, "list bans")):
        refused = await request(b, frame, "never")
        assert (refused["code"], refused["message"]) == ("forbidden", f"only owner or admin can {word}")
    await c.expect_nothing(lambda f: f.get("type") == "__closed__")


# --- ban, unban, list_bans --------------------------------------------------------------------------------


async def test_ban_closes_4002_refuses_the_next_hello_and_unban_lets_it_back(make_member, connect):
    admin, bob = await db(make_member)("admin", Role.ADMIN), await db(make_member)("bob")
    a, b = await connect(admin), await connect(bob)
    ack = await request(a, {"type": "ban", "target": bob.pubkey[:8]}, "ban_ack")
    assert ack == {"type": "ban_ack", "banned": "bob", "_reqId": "r-ban"}
    assert await b.expect_close() == (4002, "banned")
    again = await connect(bob, hello=False)
    from tests.support.identities import hello_for

    await again.send(hello_for(bob))
    refused = await again.expect("error")
    assert refused["code"] == "revoked" and (await again.expect_close())[0] == 4002
    bans = await request(a, {"type": "list_bans"}, "list_bans_result")
    assert [(x["name"], x["pubkey"]) for x in bans["bans"]] == [("bob", bob.pubkey)] and bans["bans"][0]["revokedAt"]
    prefix = await request(a, {"type": "unban", "target": bob.pubkey[:8]}, "unban_ack")
    assert (prefix["code"], prefix["message"]) == ("not_found", f'no banned peer "{bob.pubkey[:8]}"')
    lifted = await request(a, {"type": "unban", "target": bob.pubkey}, "unban_ack")
    assert lifted["unbanned"] == "bob"
    assert (await request(a, {"type": "list_bans"}, "list_bans_result"))["bans"] == []
    await connect(bob)  # welcome back
    assert list(await db(list)(AuditEvent.objects.filter(event_type__in=["member_banned", "member_unbanned"])
                               .order_by("id").values_list("event_type", flat=True))) == ["member_banned", "member_unbanned"]


async def test_ban_errors_are_the_spec_s(make_member, connect):
    admin = await db(make_member)("admin", Role.ADMIN)
    await db(make_member)("twin-1")
    await db(make_member)("twin-2")
    a = await connect(admin)
    cases = [({}, "invalid", "target required"), ({"target": "ghost"}, "not_found", 'peer "ghost" not found'),
             ({"target": "admin"}, "invalid", "cannot ban yourself")]
    for extra, code, message in cases:
        refused = await request(a, {"type": "ban", **extra}, "ban_ack")
        assert (refused["code"], refused["message"]) == (code, message)
    removed = await db(Member.objects.create)(mesh=admin.member.mesh, pubkey="ab" * 32, display_name="gone",
                                              revoked_at=timezone.now())
    bans = await request(a, {"type": "list_bans"}, "list_bans_result")
    assert removed.display_name not in [x["name"] for x in bans["bans"]]  # removed is not banned


# --- grants -----------------------------------------------------------------------------------------------


async def test_a_blocked_sender_reaches_the_recipient_neither_live_nor_from_its_queue(make_member, connect):
    alice, bob, carol = await db(make_member)("alice"), await db(make_member)("bob"), await db(make_member)("carol")
    a, b, c = await connect(alice), await connect(bob), await connect(carol)
    # given bob refuses alice's direct messages and broadcasts
    stored = await request(b, {"type": "set_grants", "grants": {alice.pubkey: ["read"]}}, "grants_result")
    assert stored["grants"] == {alice.pubkey: ["read"]}
    blocked = await send(a, bob.pubkey, "dm-live")
    assert "blocked by recipient grants" in blocked["error"]
    everyone = await send(a, "*", "all-live")
    await c.expect_push(everyone["messageId"])
    await b.expect_nothing(lambda f: f.get("messageId") == everyone["messageId"])
    # when bob is offline, carol's dm waits; alice's broadcast queued before bob blocked her is dropped at the drain
    await b.close()
    queued_dm = await send(c, bob.pubkey, "from-carol")
    await db(Member.objects.filter(pk=bob.member.pk).update)(peer_grants={})
    queued_all = await send(a, "*", "all-queued")
    await db(Member.objects.filter(pk=bob.member.pk).update)(peer_grants={alice.pubkey: []})
    back = await connect(bob)
    await back.expect_push(queued_dm["messageId"])
    await back.expect_nothing(lambda f: f.get("messageId") == queued_all["messageId"], wait=0.8)
    assert not await db(Delivery.objects.filter(message_id=queued_all["messageId"], recipient_member=bob.member).exists)()


async def test_set_grants_validates_and_only_managers_set_another_member_s(make_member, connect):
    alice, bob, admin = await db(make_member)("alice"), await db(make_member)("bob"), await db(make_member)("admin", Role.ADMIN)
    a, ad = await connect(alice), await connect(admin)
    bad = await request(a, {"type": "set_grants", "grants": {"nothex": ["dm"]}}, "grants_result")
    assert bad["code"] == "invalid_args"
    bad = await request(a, {"type": "set_grants", "grants": {bob.pubkey: ["teleport"]}}, "grants_result")
    assert bad["code"] == "invalid_args" and "teleport" in bad["message"]
    other = await request(a, {"type": "set_grants", "memberId": bob.member.id, "grants": {alice.pubkey: []}}, "grants_result")
    assert other["code"] == "forbidden"
    done = await request(ad, {"type": "set_grants", "memberId": bob.member.id, "grants": {alice.pubkey: ["files", "dm"]}},
                         "grants_result")
    assert done["grants"] == {alice.pubkey: ["file-read", "dm"]}
    cleared = await request(ad, {"type": "set_grants", "memberId": bob.member.id, "grants": {alice.pubkey: None}},
                            "grants_result")
    assert cleared["grants"] == {}
    assert await db(AuditEvent.objects.filter(event_type="member_grants_changed").count)() == 2


async def test_a_recipient_refusing_state_read_does_not_hear_that_writer_s_state_changes(make_member, connect):
    alice, bob, carol = await db(make_member)("alice"), await db(make_member)("bob"), await db(make_member)("carol")
    a, b, c = await connect(alice), await connect(bob), await connect(carol)
    await request(b, {"type": "set_grants", "grants": {alice.pubkey: ["read", "dm"]}}, "grants_result")
    await a.send({"type": "set_state", "key": "build", "value": "green"})
    assert (await c.expect("state_change"))["value"] == "green"
    await b.expect_nothing(lambda f: f.get("type") == "state_change")
    await c.send({"type": "set_state", "key": "build", "value": "red"})  # carol is not refused
    assert (await b.expect("state_change"))["value"] == "red"
