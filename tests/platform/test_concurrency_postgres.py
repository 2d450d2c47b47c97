"""Concurrent claims and audit appends on Postgres, from real threads with their own connections: an invite
with max_uses=5 admits exactly five of twenty simultaneous claimants, and the audit chain never forks."""

from __future__ import annotations

import json
import threading
from collections import Counter

import nacl.public
import pytest
from django.db import connections
from django.test import Client

from meshes import selectors, services
from meshes.audit import audit_append, audit_verify
from meshes.models import AuditEvent, Invite, Member
from protocol.crypto import SigningKeypair
from tests.support.oracles import b64url, unb64url

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

THREADS = 20
MAX_USES = 5


def at_once(count: int, work) -> list:
    """Run work(i) in `count` threads released together; each result or raised exception, in order."""
    barrier = threading.Barrier(count)
    results: list = [None] * count

    def runner(index: int) -> None:
        try:
            barrier.wait(timeout=30)
            results[index] = work(index)
        except Exception as exc:  # reported to the test, which asserts on it
            results[index] = exc
        finally:
            connections.close_all()  # threads open their own: close them so the test database can be dropped

    threads = [threading.Thread(target=runner, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads), "a worker hung"
    return results


def v1_join(invite: Invite, pubkey: str) -> tuple[int, str]:
    response = Client().post(
        "/join",
        data={
            "invite_token": invite.token,
            "invite_payload": json.loads(unb64url(invite.token)),
            "peer_pubkey": pubkey,
            "display_name": "racer",
        },
        content_type="application/json",
    )
    body = response.json()
    return response.status_code, "ok" if body.get("ok") else body["error"]


def v2_claim(invite: Invite) -> tuple[int, str]:
    recipient = b64url(bytes(nacl.public.PrivateKey.generate().public_key))
    response = Client().post(
        f"/invites/{invite.code}/claim", data={"recipient_x25519_pubkey": recipient}, content_type="application/json"
    )
    return response.status_code, "ok" if response.status_code == 200 else response.json()["error"]


@pytest.fixture
def invite(owner_actor):
    return services.invite_create(actor=owner_actor, max_uses=MAX_USES)


def assert_exactly_max_uses(invite: Invite, outcomes: list) -> None:
    assert not [o for o in outcomes if isinstance(o, Exception)], outcomes
    assert sum(1 for _status, result in outcomes if result == "ok") == MAX_USES, Counter(outcomes)
    assert Invite.objects.get(pk=invite.pk).used_count == MAX_USES
    assert Member.objects.filter(invite=invite).count() == MAX_USES
    assert audit_verify(mesh_id=invite.mesh_id).ok


def test_twenty_simultaneous_v1_joins_admit_exactly_five(invite):
    # Given twenty peers with distinct keys, when they all join at once
    pubkeys = [SigningKeypair.generate().public_hex for _ in range(THREADS)]
    outcomes = at_once(THREADS, lambda i: v1_join(invite, pubkeys[i]))

    # Then five get in and fifteen are told the invite is exhausted
    assert_exactly_max_uses(invite, outcomes)
    assert Counter(outcomes) == {(200, "ok"): MAX_USES, (400, "invite_exhausted"): THREADS - MAX_USES}


def test_twenty_simultaneous_v2_claims_admit_exactly_five(invite):
    outcomes = at_once(THREADS, lambda i: v2_claim(invite))
    assert_exactly_max_uses(invite, outcomes)
    assert Counter(outcomes) == {(200, "ok"): MAX_USES, (410, "exhausted"): THREADS - MAX_USES}


def test_v1_and_v2_racing_on_one_invite_share_its_five_uses(invite):
    pubkeys = [SigningKeypair.generate().public_hex for _ in range(THREADS)]
    outcomes = at_once(THREADS, lambda i: v1_join(invite, pubkeys[i]) if i % 2 else v2_claim(invite))
    assert_exactly_max_uses(invite, outcomes)
    assert {result for _status, result in outcomes} == {"ok", "invite_exhausted", "exhausted"}


def test_one_peer_joining_from_many_threads_takes_one_use(invite):
    pubkey = SigningKeypair.generate().public_hex
    outcomes = at_once(10, lambda i: v1_join(invite, pubkey))
    assert set(outcomes) == {(200, "ok")}
    assert Invite.objects.get(pk=invite.pk).used_count == 1
    assert Member.objects.filter(mesh_id=invite.mesh_id, pubkey=pubkey).count() == 1


# --- audit chain ----------------------------------------------------------------------------------------


def test_concurrent_audit_appends_never_fork(mesh):
    # Given a mesh, when 20 threads append 10 events each at once
    before = AuditEvent.objects.filter(mesh=mesh).count()

    def append_ten(index: int) -> None:
        for n in range(10):
            audit_append(mesh_id=mesh.id, event_type="test_event", payload={"thread": index, "n": n})

    outcomes = at_once(THREADS, append_ten)

    # Then every append landed on one unforked chain that verifies
    assert outcomes == [None] * THREADS
    events = AuditEvent.objects.filter(mesh=mesh)
    assert events.count() == before + THREADS * 10
    assert len(set(events.values_list("prev_hash", flat=True))) == events.count()
    assert audit_verify(mesh_id=mesh.id).ok


def test_concurrent_service_writes_of_one_mesh_neither_deadlock_nor_fork(mesh, owner):
    # Each write inserts a row referencing the mesh and then appends to its audit chain
    def write(index: int):
        actor = selectors.actor_for_user(mesh_id=mesh.id, user=owner)
        if index % 2:
            return services.api_key_create(actor=actor, label=f"key {index}", capabilities=["read"])[0].id
        return services.invite_create(actor=actor, max_uses=1).id

    outcomes = at_once(THREADS, write)
    assert not [o for o in outcomes if isinstance(o, Exception)], outcomes
    assert audit_verify(mesh_id=mesh.id).ok
    assert AuditEvent.objects.filter(mesh=mesh).count() == 1 + THREADS
