"""clientMessageId lookups: only the exact (sender, id) pairs already stored count as a resend."""

from __future__ import annotations

import pytest

from broker.models import Message
from broker.services.bulk import messages_by_client_id

pytestmark = pytest.mark.django_db


def stored(mesh, sender, client_id: str, n: int) -> Message:
    return Message.objects.create(
        id=f"msg-{n}", mesh=mesh, sender_member=sender, sender_pubkey=sender.pubkey, target_spec="*",
        nonce="bm9uY2U=", ciphertext="Y2lwaGVy", client_message_id=client_id,
    )


def test_a_resend_is_found_only_for_the_sender_that_used_the_id(make_member, mesh):
    """Given alice stored x and bob stored y, when a batch asks for (alice, y), (bob, x) and (alice, x), then only
    (alice, x) is a resend: the same id from another sender is a new message."""
    alice, bob = make_member("alice").member, make_member("bob").member
    stored(mesh, alice, "x", 1)
    stored(mesh, bob, "y", 2)

    found = messages_by_client_id({(alice.id, "y"), (bob.id, "x"), (alice.id, "x")})

    assert found == {(alice.id, "x"): "msg-1"}


def test_a_batch_larger_than_one_query_finds_every_stored_pair(make_member, mesh):
    """Given 250 stored ids, when a batch of 300 pairs asks (more than one bounded query on SQLite), then exactly
    the 250 stored ones are found."""
    alice = make_member("alice").member
    for n in range(250):
        stored(mesh, alice, f"c{n}", n)

    found = messages_by_client_id({(alice.id, f"c{n}") for n in range(300)})

    assert found == {(alice.id, f"c{n}"): f"msg-{n}" for n in range(250)}
