"""The per-mesh audit hash chain (protocol.md §8.7, platform.md Appendix A): the hash is the spec's text,
verification passes on an honest chain and names the first broken event after tampering or deletion."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest
from django.db import IntegrityError, transaction

from meshes import services
from meshes.audit import GENESIS, audit_append, audit_verify
from meshes.models import AuditEvent

pytestmark = pytest.mark.django_db


@pytest.fixture
def chain(mesh, owner_actor):
    """A mesh with six events: mesh_created plus five appends."""
    for n in range(5):
        audit_append(mesh_id=mesh.id, event_type="test_event", actor_member_id=None, payload={"n": n, "é": [1.0, 2]})
    return list(AuditEvent.objects.filter(mesh=mesh).order_by("id"))


def test_hash_is_sha256_of_the_spec_text(mesh, chain):
    # Given the first two events, recomputed by hand from the spec's six fields
    first, second = chain[0], chain[1]
    created = first.created_at.strftime("%Y-%m-%dT%H:%M:%S.") + f"{first.created_at.microsecond // 1000:03d}Z"
    first_text = (
        f'{GENESIS}|{mesh.id}|mesh_created|{first.actor_member_id}|{{"name":"Test Mesh","via":"dashboard"}}|{created}'
    )
    created2 = second.created_at.strftime("%Y-%m-%dT%H:%M:%S.") + f"{second.created_at.microsecond // 1000:03d}Z"
    second_text = f'{first.hash}|{mesh.id}|test_event|null|{{"n":0,"é":[1,2]}}|{created2}'

    # Then the stored hashes are exactly those, and timestamps carry whole milliseconds only
    assert first.prev_hash == GENESIS
    assert first.hash == hashlib.sha256(first_text.encode("utf-8")).hexdigest()
    assert second.hash == hashlib.sha256(second_text.encode("utf-8")).hexdigest()
    assert all(event.created_at.microsecond % 1000 == 0 for event in chain)


def test_honest_chain_verifies(mesh, chain):
    verdict = audit_verify(mesh_id=mesh.id)
    assert (verdict.ok, verdict.events, verdict.broken_at_position) == (True, 6, None)


def test_chains_are_per_mesh(mesh, chain, other_mesh):
    first_other = AuditEvent.objects.filter(mesh=other_mesh).order_by("id").first()
    assert first_other.prev_hash == GENESIS
    assert audit_verify(mesh_id=other_mesh.id).ok and audit_verify(mesh_id=mesh.id).ok


@pytest.mark.parametrize("position", [1, 3, 6])
def test_tampered_payload_breaks_at_its_position(mesh, chain, position):
    AuditEvent.objects.filter(pk=chain[position - 1].pk).update(payload={"n": 999})
    verdict = audit_verify(mesh_id=mesh.id)
    assert (verdict.ok, verdict.broken_at_position, verdict.broken_at_id) == (False, position, chain[position - 1].id)
    assert verdict.reason == "event content does not match its hash"


@pytest.mark.parametrize(
    "field, value",
    [("event_type", "innocent"), ("actor_member_id", "someone"), ("created_at", timedelta(seconds=1))],
)
def test_every_hashed_field_is_covered(mesh, chain, field, value):
    target = chain[2]
    new = target.created_at + value if field == "created_at" else value
    AuditEvent.objects.filter(pk=target.pk).update(**{field: new})
    assert audit_verify(mesh_id=mesh.id).broken_at_position == 3


def test_rewritten_hash_breaks_at_that_event(mesh, chain):
    # Replacing a hash outright fails that event's own recomputation first
    AuditEvent.objects.filter(pk=chain[3].pk).update(hash="0" * 64)
    verdict = audit_verify(mesh_id=mesh.id)
    assert (verdict.ok, verdict.broken_at_position) == (False, 4)


def test_consistently_rehashed_event_still_breaks_the_next_link(mesh, chain):
    # A forger who edits a payload and recomputes its hash breaks the following event's link instead
    from meshes.audit import audit_hash

    target = chain[2]
    forged = audit_hash(
        prev_hash=target.prev_hash,
        mesh_id=mesh.id,
        event_type=target.event_type,
        actor_member_id=target.actor_member_id,
        payload={"n": "forged"},
        created_at=target.created_at,
    )
    AuditEvent.objects.filter(pk=target.pk).update(payload={"n": "forged"}, hash=forged)
    verdict = audit_verify(mesh_id=mesh.id)
    assert (verdict.broken_at_position, verdict.broken_at_id) == (4, chain[3].id)
    assert verdict.reason == "link to the previous event is broken"


def test_deleted_middle_event_breaks_at_its_successor(mesh, chain):
    AuditEvent.objects.filter(pk=chain[2].pk).delete()
    verdict = audit_verify(mesh_id=mesh.id)
    # The successor now sits at position 3 and links to a hash that is no longer there
    assert (verdict.ok, verdict.broken_at_position, verdict.broken_at_id) == (False, 3, chain[3].id)


def test_deleted_first_event_breaks_at_position_one(mesh, chain):
    AuditEvent.objects.filter(pk=chain[0].pk).delete()
    assert audit_verify(mesh_id=mesh.id).broken_at_position == 1


def test_deleting_the_tail_is_not_detectable_by_the_chain_alone(mesh, chain):
    # Documented limit: truncation leaves a valid (shorter) chain; only the count changes
    AuditEvent.objects.filter(pk=chain[-1].pk).delete()
    verdict = audit_verify(mesh_id=mesh.id)
    assert (verdict.ok, verdict.events) == (True, 5)


def test_a_second_event_on_the_same_link_is_refused(mesh, chain):
    last = chain[-1]
    with pytest.raises(IntegrityError), transaction.atomic():
        AuditEvent.objects.create(
            mesh=mesh,
            event_type="fork",
            payload={},
            prev_hash=last.prev_hash,
            hash="f" * 64,
            created_at=last.created_at,
        )


def test_services_audit_with_their_actor(mesh, owner_actor, key_factory):
    key, _ = key_factory(["admin"])
    services.api_key_revoke(actor=owner_actor, key_ref=key.id)
    event = AuditEvent.objects.filter(mesh=mesh).order_by("-id").first()
    assert (event.event_type, event.actor_member_id, event.payload["keyId"]) == (
        "api_key_revoked",
        owner_actor.member_id,
        key.id,
    )
    assert audit_verify(mesh_id=mesh.id).ok
