"""Leases, heartbeat, orphan release and retransmit (the database-backed safety nets), in one process."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from broker.models import Delivery, DeliveryState, Presence
from broker.worker import get_worker
from tests.support.sockets import db

pytestmark = pytest.mark.django_db(transaction=True)


async def test_ghost_presence_of_a_dead_worker_expires(make_member, connect, settings):
    settings.BROKER_PRESENCE_LEASE_SECONDS = 5
    alice = await db(make_member)("alice")
    bob = await db(make_member)("bob")
    a = await connect(alice)
    await connect(bob, deliveryAck=True)
    await a.expect_event("peer_joined")
    # Pretend bob's worker died 10 s ago: its presence belongs to another worker and its lease is stale.
    await db(lambda: Presence.objects.filter(member=bob.member).update(worker_id="dead-worker", last_ping_at=timezone.now() - timedelta(seconds=10)))()
    bob_presence = await db(lambda: Presence.objects.get(member=bob.member).id)()
    worker = get_worker()
    worker.registry.unregister(worker.registry.get(bob_presence))  # its socket "lives" on the dead worker now
    await worker.sweeper.sweep()
    left = await a.expect_event("peer_left")
    assert left["eventData"]["pubkey"] == bob.pubkey
    await a.send({"type": "list_peers"})
    assert [p["displayName"] for p in (await a.expect("peers_list"))["peers"]] == ["alice"]


async def test_heartbeat_closes_sockets_closed_elsewhere(make_member, connect):
    alice = await db(make_member)("alice")
    a = await connect(alice)
    await db(lambda: Presence.objects.update(disconnected_at=timezone.now()))()
    await get_worker().sweeper.heartbeat()
    assert await a.expect_close() == (1000, "disconnected_stale")


async def test_orphaned_in_flight_rows_are_released_and_redelivered(make_member, connect):
    alice = await db(make_member)("alice")
    bob = await db(make_member)("bob")
    a = await connect(alice)
    b = await connect(bob, deliveryAck=True, sessionId="bob-1")
    await a.send({"type": "send", "id": "o", "targetSpec": bob.pubkey, "nonce": "n", "ciphertext": "orphan"})
    ack = await a.expect("ack")
    await b.expect_push(ack["messageId"])  # written, never acked
    row = await db(lambda: Delivery.objects.get(message_id=ack["messageId"]))()
    assert row.state == DeliveryState.IN_FLIGHT
    # Its claimer vanishes without the close path (a crash): the sweep releases the row...
    await db(lambda: Presence.objects.filter(pk=row.claimed_by).update(disconnected_at=timezone.now()))()
    await get_worker().sweeper.sweep()
    assert (await db(lambda: Delivery.objects.get(pk=row.pk))()).state == DeliveryState.PENDING
    # ...and bob's next session gets it again.
    b2 = await connect(bob, deliveryAck=True, sessionId="bob-2")
    assert (await b2.expect_push(ack["messageId"]))["ciphertext"] == "orphan"


async def test_unacknowledged_pushes_are_retransmitted(make_member, connect, settings):
    settings.BROKER_RETRANSMIT_SECONDS = 0
    alice = await db(make_member)("alice")
    bob = await db(make_member)("bob")
    a = await connect(alice)
    b = await connect(bob, deliveryAck=True)
    await a.send({"type": "send", "id": "r", "targetSpec": bob.pubkey, "nonce": "n", "ciphertext": "again"})
    ack = await a.expect("ack")
    await b.expect_push(ack["messageId"])
    await get_worker().sweeper.sweep()
    assert (await b.expect_push(ack["messageId"]))["ciphertext"] == "again"
    await b.send({"type": "push_ack", "messageIds": [ack["messageId"]]})
    await b.send({"type": "list_peers"})
    await b.expect("peers_list")
    await get_worker().marks.batcher.drain()
    await get_worker().sweeper.sweep()
    await b.expect_nothing(lambda f: f.get("messageId") == ack["messageId"])


async def test_no_retransmit_while_the_push_ack_is_queued_or_the_push_is_recent(make_member, connect, settings):
    """Under a backlog the ack may wait in the mark batcher longer than the window: that is not a loss."""
    alice = await db(make_member)("alice")
    bob = await db(make_member)("bob")
    a = await connect(alice)
    b = await connect(bob, deliveryAck=True)
    await a.send({"type": "send", "id": "q", "targetSpec": bob.pubkey, "nonce": "n", "ciphertext": "once"})
    ack = await a.expect("ack")
    await b.expect_push(ack["messageId"])
    worker = get_worker()
    # Written a moment ago: the window counts from the write, so a 5 s window holds it even if claimed_at is old.
    settings.BROKER_RETRANSMIT_SECONDS = 5
    await db(lambda: Delivery.objects.filter(message_id=ack["messageId"]).update(claimed_at=timezone.now() - timedelta(seconds=60)))()
    await worker.sweeper.sweep()
    await b.expect_nothing(lambda f: f.get("messageId") == ack["messageId"])
    # The ack is queued in the mark batcher (not flushed yet): still no re-send, even with a zero window.
    settings.BROKER_RETRANSMIT_SECONDS = 0
    bob_conn = next(c for c in worker.registry.of_member(bob.member.id))
    worker.inflight.ack_queued(bob_conn.presence_id, [ack["messageId"]])
    await worker.sweeper.sweep()
    await b.expect_nothing(lambda f: f.get("messageId") == ack["messageId"])
    # If that mark fails (the ack is no longer queued and the row is still in flight), it is re-sent.
    worker.inflight.ack_flushed(bob_conn.presence_id, [ack["messageId"]], stored=False)
    await worker.sweeper.sweep()
    assert (await b.expect_push(ack["messageId"]))["ciphertext"] == "once"
