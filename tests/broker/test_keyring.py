"""The broker's side of the mesh keyring (docs/encryption.md, docs/wire-extensions.md "Keyring"), with real keys:
it stores wraps it cannot open, refuses forged, moved or substituted ones, lets one creator start each epoch,
and relays key requests to holders (live, or at their next hello) and the grant back."""

from __future__ import annotations

import pytest

from broker.models import KeyRequest, KeyWrap
from protocol.encoding import b64_encode
from protocol.keyring import new_scope_key, open_wrap, topic_scope, wrap_key
from tests.broker.test_topics import request
from tests.support.sockets import db

pytestmark = pytest.mark.django_db(transaction=True)


def wraps_for(key: bytes, mesh_id: str, scope: str, epoch: int, granter, recipients) -> list[dict]:
    return [
        {"memberId": who.member.id, "wrap": wrap_key(key, mesh_id=mesh_id, scope=scope, epoch=epoch,
                                                     recipient_pubkey=who.pubkey, granter=granter.keypair)}
        for who in recipients
    ]


async def put(sock, scope: str, epoch: int, wraps: list[dict], *, create: bool) -> dict:
    return await request(sock, {"type": "key_put", "scope": scope, "epoch": epoch, "create": create, "wraps": wraps},
                         "key_stored")


async def test_an_epoch_is_stored_opaque_and_each_member_fetches_and_opens_its_own_wrap(mesh, make_member, connect):
    alice, bob = await db(make_member)("alice"), await db(make_member)("bob")
    a, b = await connect(alice), await connect(bob)
    key = new_scope_key()
    stored = await put(a, "mesh", 1, wraps_for(key, mesh.id, "mesh", 1, alice, [alice, bob]), create=True)
    assert (stored["stored"], stored["skipped"]) == (2, 0)
    listing = await request(b, {"type": "key_get", "scope": "mesh"}, "key_list")
    assert listing["current"] == 1 and sorted(listing["holders"]) == sorted([alice.member.id, bob.member.id])
    [entry] = listing["keys"]
    opened, granter = open_wrap(entry["wrap"], mesh_id=mesh.id, scope="mesh", epoch=1, recipient=bob.keypair)
    assert opened == key and granter == alice.pubkey
    blobs = await db(lambda: list(KeyWrap.objects.values_list("wrap", flat=True)))()
    assert len(blobs) == 2 and not any(key.hex() in blob or b64_encode(key) in blob for blob in blobs)


async def test_one_creator_starts_each_epoch(mesh, make_member, connect):
    alice, bob = await db(make_member)("alice"), await db(make_member)("bob")
    a, b = await connect(alice), await connect(bob)
    assert (await put(a, "mesh", 1, wraps_for(new_scope_key(), mesh.id, "mesh", 1, alice, [alice]), create=True))["stored"] == 1
    late = await put(b, "mesh", 1, wraps_for(new_scope_key(), mesh.id, "mesh", 1, bob, [bob]), create=True)
    assert late["type"] == "error" and late["code"] == "epoch_exists"
    skipping = await put(b, "mesh", 3, wraps_for(new_scope_key(), mesh.id, "mesh", 3, bob, [bob]), create=True)
    assert skipping["code"] == "epoch_exists" and "must be 2" in skipping["message"]
    stranger = await put(b, "mesh", 1, wraps_for(new_scope_key(), mesh.id, "mesh", 1, bob, [bob]), create=False)
    assert stranger["code"] == "not_a_holder"


async def test_forged_moved_and_misaddressed_wraps_are_refused(mesh, make_member, connect):
    alice, bob, carol = [await db(make_member)(name) for name in ("alice", "bob", "carol")]
    a = await connect(alice)
    key = new_scope_key()
    moved = wraps_for(key, mesh.id, "mesh", 2, alice, [alice])  # made for epoch 2, offered as 1
    refused = await put(a, "mesh", 1, moved, create=True)
    assert refused["code"] == "invalid_wrap" and "epoch 2" in refused["message"]
    other_scope = wraps_for(key, mesh.id, "group:ops", 1, alice, [alice])
    assert (await put(a, "mesh", 1, other_scope, create=True))["code"] == "invalid_wrap"
    by_someone_else = wraps_for(key, mesh.id, "mesh", 1, bob, [alice])  # granter is not the uploader
    assert (await put(a, "mesh", 1, by_someone_else, create=True))["code"] == "invalid_wrap"
    swapped = wraps_for(key, mesh.id, "mesh", 1, alice, [bob])
    swapped[0]["memberId"] = carol.member.id  # bob's wrap filed as carol's
    assert (await put(a, "mesh", 1, swapped, create=True))["code"] == "invalid_wrap"
    blob = wraps_for(key, mesh.id, "mesh", 1, alice, [alice])
    tampered = blob[0]["wrap"][:-8] + ("A" * 8 if not blob[0]["wrap"].endswith("A" * 8) else "B" * 8)
    assert (await put(a, "mesh", 1, [{"memberId": alice.member.id, "wrap": tampered}], create=True))["code"] == "invalid_wrap"
    assert await db(KeyWrap.objects.count)() == 0
    nonsense = await request(a, {"type": "key_get", "scope": "nope:1"}, "key_list")
    assert nonsense["code"] == "scope_not_found"


async def test_a_topic_key_is_only_for_its_subscribers(mesh, make_member, connect):
    alice, bob = await db(make_member)("alice"), await db(make_member)("bob")
    a, b = await connect(alice), await connect(bob)
    topic = (await request(a, {"type": "topic_create", "name": "core"}, "topic_created"))["topic"]
    scope = topic_scope(topic["id"])
    outsider = await put(a, scope, 1, wraps_for(new_scope_key(), mesh.id, scope, 1, alice, [alice, bob]), create=True)
    assert outsider["code"] == "invalid_wrap" and "not a member" in outsider["message"]
    assert (await request(b, {"type": "key_request", "scope": scope}, "key_request_ack"))["code"] == "not_in_scope"


async def test_a_request_reaches_online_holders_and_the_grant_reaches_the_requester(mesh, make_member, connect):
    alice, bob = await db(make_member)("alice"), await db(make_member)("bob")
    a, b = await connect(alice), await connect(bob)
    key = new_scope_key()
    await put(a, "mesh", 1, wraps_for(key, mesh.id, "mesh", 1, alice, [alice]), create=True)
    ack = await request(b, {"type": "key_request", "scope": "mesh"}, "key_request_ack")
    assert (ack["holders"], ack["holdersOnline"]) == (1, 1)
    asked = await a.expect_event("key_requested")
    assert asked["eventData"] == {"scope": "mesh", "memberId": bob.member.id, "pubkey": bob.pubkey}
    assert (await put(a, "mesh", 1, wraps_for(key, mesh.id, "mesh", 1, alice, [bob]), create=False))["stored"] == 1
    granted = await b.expect_event("key_granted")
    assert granted["eventData"] == {"scope": "mesh", "epoch": 1}
    assert await db(KeyRequest.objects.count)() == 0
    [entry] = (await request(b, {"type": "key_get", "scope": "mesh"}, "key_list"))["keys"]
    assert open_wrap(entry["wrap"], mesh_id=mesh.id, scope="mesh", epoch=1, recipient=bob.keypair)[0] == key


async def test_a_holder_who_was_offline_hears_of_the_request_at_its_next_hello(mesh, make_member, connect):
    alice, bob = await db(make_member)("alice"), await db(make_member)("bob")
    a = await connect(alice)
    await put(a, "mesh", 1, wraps_for(new_scope_key(), mesh.id, "mesh", 1, alice, [alice]), create=True)
    await a.close()
    b = await connect(bob)
    ack = await request(b, {"type": "key_request", "scope": "mesh"}, "key_request_ack")
    assert (ack["holders"], ack["holdersOnline"]) == (1, 0)
    listing = await request(b, {"type": "key_get", "scope": "mesh"}, "key_list")
    assert listing["keys"] == [] and listing["waiting"] == [bob.member.id]
    back = await connect(alice)
    asked = await back.expect_event("key_requested")
    assert asked["eventData"]["memberId"] == bob.member.id


async def test_a_repeated_request_is_not_pushed_to_holders_again_at_once(mesh, make_member, connect):
    alice, bob = await db(make_member)("alice"), await db(make_member)("bob")
    a, b = await connect(alice), await connect(bob)
    await put(a, "mesh", 1, wraps_for(new_scope_key(), mesh.id, "mesh", 1, alice, [alice]), create=True)
    for _ in range(5):
        assert (await request(b, {"type": "key_request", "scope": "mesh"}, "key_request_ack"))["holders"] == 1
    await a.expect_event("key_requested")
    await a.expect_nothing(lambda f: f.get("event") == "key_requested")
    assert await db(KeyRequest.objects.count)() == 1


async def test_a_requester_who_already_held_the_epoch_is_answered_too(mesh, make_member, connect):
    """It may have missed fetching it: a holder's re-share ends its wait even though nothing new is stored."""
    alice, bob = await db(make_member)("alice"), await db(make_member)("bob")
    a, b = await connect(alice), await connect(bob)
    key = new_scope_key()
    await put(a, "mesh", 1, wraps_for(key, mesh.id, "mesh", 1, alice, [alice, bob]), create=True)
    await request(b, {"type": "key_request", "scope": "mesh"}, "key_request_ack")
    await a.expect_event("key_requested")
    again = await put(a, "mesh", 1, wraps_for(key, mesh.id, "mesh", 1, alice, [bob]), create=False)
    assert (again["stored"], again["skipped"]) == (0, 1)
    assert (await b.expect_event("key_granted"))["eventData"] == {"scope": "mesh", "epoch": 1}
    assert await db(KeyRequest.objects.count)() == 0
