"""Retention: messages past BROKER_MESSAGE_RETENTION_DAYS go with their delivery rows, a bounded batch at a time."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from broker.models import Delivery, DeliveryState, Message
from broker.services.bulk import DeliveryRow, MessageRow, rows_insert
from broker.services.deliveries import messages_expire
from protocol.ids import new_id

pytestmark = pytest.mark.django_db(transaction=True)


def _store(identity, recipient, *, age: timedelta, state=DeliveryState.PENDING) -> str:
    message = MessageRow(
        id=new_id(), mesh_id=identity.member.mesh_id, sender_member_id=identity.member.id, sender_session_pubkey=None,
        sender_pubkey=identity.pubkey, target_spec=recipient.pubkey, priority="now", nonce="bm9uY2U=",
        ciphertext="Y2lwaGVy", client_message_id=None, created_at=timezone.now() - age,
    )  # fmt: skip
    rows_insert(
        messages=[message],
        deliveries=[DeliveryRow(message_id=message.id, recipient_member_id=recipient.member.id, state=state)],
    )
    return message.id


def test_expired_messages_and_their_deliveries_go_in_batches_and_fresh_ones_stay(make_member, settings):
    # given five messages past a 7-day retention (delivered or not) and two fresh ones
    settings.BROKER_MESSAGE_RETENTION_DAYS = 7
    alice, bob = make_member("alice"), make_member("bob")
    old = [_store(alice, bob, age=timedelta(days=8, minutes=n), state=DeliveryState(n % 3)) for n in range(5)]
    fresh = [_store(alice, bob, age=timedelta(days=6)), _store(bob, alice, age=timedelta(minutes=1))]
    # when the retention sweep runs with batches of two
    with CaptureQueriesContext(connection) as queries:
        deleted = messages_expire(batch_size=2)
    # then every expired message and delivery row is gone, in three delete rounds, and the fresh ones are kept
    assert deleted == 5
    assert set(Message.objects.values_list("id", flat=True)) == set(fresh)
    assert set(Delivery.objects.values_list("message_id", flat=True)) == set(fresh)
    message_deletes = [
        q for q in queries.captured_queries if q["sql"].startswith(f'DELETE FROM "{Message._meta.db_table}"')
    ]
    assert len(message_deletes) == 3
    assert not set(old) & set(Message.objects.values_list("id", flat=True))
    assert messages_expire(batch_size=2) == 0
