"""deliveries_mark_delivered: one batch of marks from many sockets, each mark touching only its own rows."""

from __future__ import annotations

import pytest
from django.utils import timezone

from broker.models import Delivery, DeliveryState, Message
from broker.services.deliveries import DeliveredMark, deliveries_mark_delivered

pytestmark = pytest.mark.django_db


def message(mesh, sender, n: int) -> Message:
    return Message.objects.create(
        id=f"msg{n}", mesh=mesh, sender_member=sender, sender_pubkey=sender.pubkey, target_spec="*",
        nonce="bm9uY2U=", ciphertext="Y2lwaGVy",
    )


def delivery(msg: Message, member, *, session: str | None = None, claimed_by: str | None = None) -> Delivery:
    return Delivery.objects.create(
        message=msg, recipient_member=member, recipient_session=session, state=DeliveryState.IN_FLIGHT,
        claimed_by=claimed_by, claimed_at=timezone.now(),
    )


def state(row: Delivery) -> int:
    row.refresh_from_db()
    return row.state


def test_one_batch_marks_each_sockets_own_rows_and_nothing_else(make_member, mesh):
    """Given rows in flight for two recipients (some addressed to one session) and two ack-less claimers, when
    one batch carries push_acks from both recipients and by-claim marks from both claimers, then exactly the
    rows each mark may touch are delivered: a push_ack never marks another member's row or a row addressed to
    a session key the acking socket does not hold, and a by-claim mark only rows that socket claimed."""
    alice, bob, carol = (make_member(name).member for name in ("alice", "bob", "carol"))
    m1, m2, m3 = (message(mesh, alice, n) for n in (1, 2, 3))
    bob_any = delivery(m1, bob)
    bob_s1 = delivery(m2, bob, session="sess-1")
    bob_s2 = delivery(m3, bob, session="sess-2")  # another session of bob: not this socket's
    carol_m1 = delivery(m1, carol)  # same message, other member: bob's ack must not touch it
    claimed_p1 = delivery(m2, carol, claimed_by="p1")
    claimed_p2 = delivery(m3, carol, claimed_by="p2")
    claimed_other = delivery(m3, alice, claimed_by="p3")  # same message, claimer not in the batch

    done = deliveries_mark_delivered(marks=[
        DeliveredMark("pb", bob.id, ("sess-1", "s:x"), ("msg1", "msg2", "msg3"), by_claim=False),
        DeliveredMark("pb", bob.id, ("sess-1", "s:x"), ("msg1",), by_claim=False),  # repeated ack
        DeliveredMark("pc", carol.id, (), ("unknown-id",), by_claim=False),
        DeliveredMark("p1", carol.id, (), ("msg2",), by_claim=True),
        DeliveredMark("p2", carol.id, ("k",), ("msg3", "msg1"), by_claim=True),
    ])

    delivered = DeliveryState.DELIVERED
    assert [state(r) for r in (bob_any, bob_s1, claimed_p1, claimed_p2)] == [delivered] * 4
    assert [state(r) for r in (bob_s2, carol_m1, claimed_other)] == [DeliveryState.IN_FLIGHT] * 3
    assert done == 4
    assert Delivery.objects.get(pk=bob_any.pk).delivered_at is not None


def test_an_already_delivered_row_is_not_marked_again(make_member, mesh):
    """Given a delivered row, when its push_ack arrives again, then nothing changes (its delivered_at stays)."""
    alice, bob = make_member("alice").member, make_member("bob").member
    row = delivery(message(mesh, alice, 1), bob)
    deliveries_mark_delivered(marks=[DeliveredMark("pb", bob.id, (), ("msg1",), by_claim=False)])
    first = Delivery.objects.get(pk=row.pk).delivered_at

    again = deliveries_mark_delivered(marks=[DeliveredMark("pb", bob.id, (), ("msg1",), by_claim=False)])

    assert again == 0 and Delivery.objects.get(pk=row.pk).delivered_at == first
