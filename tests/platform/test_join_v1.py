"""`POST /join` (protocol.md §6.3): every error code in the reference's order, precedence between them, and
alreadyMember not consuming a use."""

from __future__ import annotations

import json
import time
from datetime import timedelta

import nacl.signing
import pytest
from django.db import IntegrityError
from django.utils import timezone

from meshes import services
from meshes.models import Invite, Member, Mesh
from meshes.services import invites as invite_services
from protocol.crypto import SigningKeypair
from tests.support.oracles import hand_v1, unb64url

pytestmark = pytest.mark.django_db

REQUIRED = "invite_token, invite_payload, peer_pubkey, display_name required"
BAD_PUBKEY = "peer_pubkey must be 64 hex chars (32 bytes)"


@pytest.fixture
def invite(owner_actor):
    return services.invite_create(actor=owner_actor, max_uses=1)


def body_for(invite, peer, **overrides):
    body = {
        "invite_token": invite.token,
        "invite_payload": json.loads(unb64url(invite.token)),
        "peer_pubkey": peer.public_hex,
        "display_name": "laptop-123",
    }
    body.update(overrides)
    return body


def join(api, body):
    response = api.post("/join", body=body)
    return response.status_code, response.json()


# --- 1, 2: arguments ------------------------------------------------------------------------------------


@pytest.mark.parametrize("missing", ["invite_token", "invite_payload", "peer_pubkey", "display_name"])
def test_1_every_field_is_required(api, invite, peer, missing):
    body = body_for(invite, peer)
    del body[missing]
    assert join(api, body) == (400, {"ok": False, "error": REQUIRED})


@pytest.mark.parametrize("bad", ["abc", "g" * 64, "a" * 63, "a" * 65, 12345])
def test_2_peer_pubkey_must_be_64_hex(api, invite, peer, bad):
    assert join(api, body_for(invite, peer, peer_pubkey=bad)) == (400, {"ok": False, "error": BAD_PUBKEY})


def test_2_comes_after_1(api, invite, peer):
    assert join(api, body_for(invite, peer, peer_pubkey="xyz", display_name="")) == (
        400,
        {"ok": False, "error": REQUIRED},
    )


# --- 3 to 13 --------------------------------------------------------------------------------------------


def test_3_bad_signature(api, invite, peer):
    payload = json.loads(unb64url(invite.token))
    payload["mesh_slug"] = "evil"
    assert join(api, body_for(invite, peer, invite_payload=payload)) == (
        400,
        {"ok": False, "error": "invite_bad_signature"},
    )


def test_3_malformed_payload_counts_as_bad_signature(api, invite, peer):
    assert join(api, body_for(invite, peer, invite_payload={"v": 1})) == (
        400,
        {"ok": False, "error": "invite_bad_signature"},
    )


def test_3_comes_before_mesh_checks(api, invite, peer, mesh):
    Mesh.objects.filter(pk=mesh.pk).update(archived_at=timezone.now())
    payload = json.loads(unb64url(invite.token))
    payload["signature"] = "0" * 128
    assert join(api, body_for(invite, peer, invite_payload=payload))[1]["error"] == "invite_bad_signature"


def test_4_unknown_mesh(api, peer):
    stranger = nacl.signing.SigningKey.generate()
    token, payload, _ = hand_v1(
        signing_key=stranger, mesh_id="NoSuchMesh", mesh_slug="x", expires_at=int(time.time()) + 60, root_key="k"
    )
    body = {"invite_token": token, "invite_payload": payload, "peer_pubkey": peer.public_hex, "display_name": "p"}
    assert join(api, body) == (400, {"ok": False, "error": "mesh_not_found"})


def test_4_archived_mesh_is_not_found(api, invite, peer, mesh):
    Mesh.objects.filter(pk=mesh.pk).update(archived_at=timezone.now())
    assert join(api, body_for(invite, peer)) == (400, {"ok": False, "error": "mesh_not_found"})


def test_5_mesh_without_owner_key(api, invite, peer, mesh):
    Mesh.objects.filter(pk=mesh.pk).update(owner_pubkey="")
    assert join(api, body_for(invite, peer)) == (400, {"ok": False, "error": "mesh_missing_owner_key"})


def test_6_signed_by_another_key(api, invite, peer, mesh):
    # A valid signature over this mesh's id, but by a key that is not the mesh owner's
    impostor = nacl.signing.SigningKey.generate()
    token, payload, _ = hand_v1(
        signing_key=impostor,
        mesh_id=mesh.id,
        mesh_slug=mesh.slug,
        expires_at=int(time.time()) + 60,
        root_key="guess",
    )
    assert join(api, body_for(invite, peer, invite_token=token, invite_payload=payload)) == (
        400,
        {"ok": False, "error": "invite_owner_mismatch"},
    )


def test_7_token_not_stored(api, invite, peer, mesh):
    # Correctly signed by the owner, but never minted: no row has this token
    owner_key = nacl.signing.SigningKey(bytes.fromhex(mesh.owner_secret_hex())[:32])
    token, payload, _ = hand_v1(
        signing_key=owner_key,
        mesh_id=mesh.id,
        mesh_slug=mesh.slug,
        expires_at=int(time.time()) + 60,
        root_key=mesh.root_key_b64url(),
    )
    assert join(api, body_for(invite, peer, invite_token=token, invite_payload=payload)) == (
        400,
        {"ok": False, "error": "invite_not_found"},
    )


def test_8_token_of_another_mesh(api, invite, peer, other_actor):
    # This mesh's valid payload, but the token of another mesh's invite
    foreign = services.invite_create(actor=other_actor)
    assert join(api, body_for(invite, peer, invite_token=foreign.token)) == (
        400,
        {"ok": False, "error": "invite_mesh_mismatch"},
    )


def test_9_revoked(api, invite, peer, owner_actor):
    services.invite_revoke(actor=owner_actor, invite_id=invite.id)
    assert join(api, body_for(invite, peer)) == (400, {"ok": False, "error": "invite_revoked"})


def test_9_revoked_wins_over_expired(api, invite, peer, owner_actor):
    services.invite_revoke(actor=owner_actor, invite_id=invite.id)
    Invite.objects.filter(pk=invite.pk).update(expires_at=timezone.now() - timedelta(days=1))
    assert join(api, body_for(invite, peer))[1]["error"] == "invite_revoked"


def test_10_expired_row_even_if_the_payload_is_not(api, invite, peer):
    Invite.objects.filter(pk=invite.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert join(api, body_for(invite, peer)) == (400, {"ok": False, "error": "invite_expired"})


def test_11_already_member_does_not_consume_a_use(api, owner_actor, peer):
    # Given an invite with two uses, used once by this peer
    invite = services.invite_create(actor=owner_actor, max_uses=2)
    status, first = join(api, body_for(invite, peer))

    # When the same peer joins again (twice)
    again = [join(api, body_for(invite, peer)) for _ in range(2)]

    # Then it gets its member back and the invite still has one use left
    assert status == 200 and first["ok"] is True and "alreadyMember" not in first
    assert again == [(200, {"ok": True, "memberId": first["memberId"], "alreadyMember": True})] * 2
    assert Invite.objects.get(pk=invite.pk).used_count == 1


def test_11_already_member_wins_over_exhausted(api, invite, peer):
    join(api, body_for(invite, peer))
    assert Invite.objects.get(pk=invite.pk).used_count == invite.max_uses
    status, body = join(api, body_for(invite, peer))
    assert status == 200 and body["alreadyMember"] is True


def test_12_exhausted(api, invite, peer):
    join(api, body_for(invite, peer))
    assert join(api, body_for(invite, SigningKeypair.generate())) == (
        400,
        {"ok": False, "error": "invite_exhausted"},
    )
    assert Member.objects.filter(invite=invite).count() == 1


def test_13_member_insert_failed(api, invite, peer, monkeypatch):
    def always_conflicts(*args, **kwargs):
        raise IntegrityError("duplicate key")

    monkeypatch.setattr(invite_services, "_join_v1_once", always_conflicts)
    assert join(api, body_for(invite, peer)) == (400, {"ok": False, "error": "member_insert_failed"})


def test_joined_member_carries_the_invite_role_and_pubkey(api, owner_actor, peer, mesh):
    invite = services.invite_create(actor=owner_actor, role="admin")
    _, body = join(api, body_for(invite, peer, peer_pubkey=peer.public_hex.upper()))
    member = Member.objects.get(pk=body["memberId"])
    assert (member.mesh_id, member.role, member.pubkey, member.display_name) == (
        mesh.id,
        "admin",
        peer.public_hex,
        "laptop-123",
    )


# --- transport ------------------------------------------------------------------------------------------


def test_body_over_64_kib_is_413(api, invite, peer):
    body = body_for(invite, peer, display_name="x" * 70_000)
    response = api.post("/join", body=body)
    assert response.status_code == 413
    assert response.json() == {"ok": False, "error": "payload too large", "code": "payload_too_large"}


def test_invalid_json_is_400(api):
    response = api.post("/join", raw=b"{not json")
    assert response.status_code == 400 and response.json()["ok"] is False


def test_get_is_405_json(api):
    response = api.get("/join")
    assert response.status_code == 405 and response.json()["ok"] is False


def test_unexpected_failure_is_500_without_details(api, invite, peer, monkeypatch):
    def explode(*args, **kwargs):
        raise RuntimeError("secret internals")

    monkeypatch.setattr(services, "invite_join_v1", explode)
    response = api.post("/join", body=body_for(invite, peer))
    assert response.status_code == 500
    assert response.json() == {"ok": False, "error": "internal error"}


# --- text Postgres cannot store ------------------------------------------------------------------------


def test_nul_in_token_or_mesh_id_is_a_miss_and_in_names_is_dropped(api, invite, peer):
    # Given a NUL inside the token, the signed mesh id, or the display name
    bad_token = join(api, body_for(invite, peer, invite_token=invite.token + "\x00"))
    stranger = nacl.signing.SigningKey.generate()
    token, payload, _ = hand_v1(
        signing_key=stranger, mesh_id="ab\x00", mesh_slug="x", expires_at=int(time.time()) + 60, root_key="k"
    )
    bad_mesh = join(api, {**body_for(invite, peer), "invite_token": token, "invite_payload": payload})
    named = join(api, body_for(invite, peer, display_name="lap\x00top\x07"))

    # Then each answers like any other miss (never a database error), and the name is stored printable
    assert bad_token == (400, {"ok": False, "error": "invite_not_found"})
    assert bad_mesh == (400, {"ok": False, "error": "mesh_not_found"})
    assert named[0] == 200 and Member.objects.get(pk=named[1]["memberId"]).display_name == "laptop"
