"""Invite signature vectors, both ways: tokens built by hand from the spec (client.md §3.2, protocol.md §8.5)
with raw PyNaCl + base64/json must verify with our code and be accepted by the server, and ours must be the
same bytes a hand-built token has. v2: the sealed root key opens with the claimant's x25519 secret."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta

import nacl.public
import nacl.signing
import pytest

from meshes import services
from meshes.models import Invite, token_digest
from protocol import invites as wire_invites
from tests.support.oracles import b64url, hand_signing_key, hand_v1, unb64url

pytestmark = pytest.mark.django_db



def store_invite(mesh, token, canonical, *, expires_at, max_uses=1, code="HANDMADE"):
    payload = json.loads(unb64url(token))
    return Invite.objects.create(
        mesh=mesh,
        token_digest=token_digest(token),
        token_mesh_slug=payload["mesh_slug"],
        token_broker_url=payload["broker_url"],
        code=code,
        role="member",
        max_uses=max_uses,
        expires_at=expires_at,
        version=1,
    )


def join_body(token, payload, peer, name="hand peer"):
    return {"invite_token": token, "invite_payload": payload, "peer_pubkey": peer.public_hex, "display_name": name}


def in_days(days: int) -> int:
    return int(time.time()) + days * 86400


def test_hand_built_v1_token_verifies_and_is_accepted_by_join(mesh, api, peer):
    # Given a v1 token built by hand from the canonical string, and the matching invite row
    expires = in_days(3)
    token, payload, canonical = hand_v1(
        signing_key=hand_signing_key(mesh),
        mesh_id=mesh.id,
        mesh_slug=mesh.slug,
        expires_at=expires,
        root_key=mesh.root_key_b64url(),
    )
    store_invite(mesh, token, canonical, expires_at=datetime.fromtimestamp(expires, UTC))

    # When our verifier reads it and a peer enrolls with it
    verified = wire_invites.v1_verify(token)
    response = api.post("/join", body=join_body(token, payload, peer))

    # Then both accept it
    assert verified == payload
    assert response.status_code == 200, response.content
    assert response.json()["ok"] is True and response.json()["memberId"]
    assert "alreadyMember" not in response.json()


def test_minted_v1_token_is_byte_identical_to_a_hand_built_one(mesh, owner_actor):
    # Given an invite minted by the service
    invite = services.invite_create(actor=owner_actor, role="admin", max_uses=2, expires_in_days=5)
    decoded = json.loads(unb64url(invite.token))

    # When the same fields are signed and encoded by hand
    token, payload, canonical = hand_v1(
        signing_key=hand_signing_key(mesh),
        mesh_id=decoded["mesh_id"],
        mesh_slug=decoded["mesh_slug"],
        expires_at=decoded["expires_at"],
        root_key=decoded["mesh_root_key"],
        role=decoded["role"],
        broker=decoded["broker_url"],
    )

    # Then every byte matches (ed25519 is deterministic), and the fields are the mesh's
    assert token == invite.token
    assert canonical == invite.v1_payload().canonical()
    assert list(decoded) == list(payload)  # the reference issuer's key order
    assert decoded["mesh_id"] == mesh.id and decoded["owner_pubkey"] == mesh.owner_pubkey
    assert decoded["mesh_root_key"] == mesh.root_key_b64url()
    assert decoded["expires_at"] == int(invite.expires_at.timestamp())


def test_tampered_v1_token_fails_verification_and_join(mesh, owner_actor, api, peer):
    # Given a minted invite whose payload is altered after signing
    invite = services.invite_create(actor=owner_actor)
    payload = json.loads(unb64url(invite.token))
    payload["role"] = "admin"
    tampered = b64url(json.dumps(payload, separators=(",", ":")).encode())

    # When it is verified and used
    with pytest.raises(wire_invites.InviteError) as caught:
        wire_invites.v1_verify(tampered)
    response = api.post("/join", body=join_body(invite.token, payload, peer))

    # Then both reject the signature
    assert caught.value.code == "bad_signature"
    assert response.status_code == 400
    assert response.json() == {"ok": False, "error": "invite_bad_signature"}


@pytest.mark.parametrize("field", ["mesh_slug", "broker_url", "mesh_root_key", "expires_at"])
def test_every_signed_field_is_covered_by_the_signature(mesh, owner_actor, field):
    invite = services.invite_create(actor=owner_actor)
    payload = json.loads(unb64url(invite.token))
    payload[field] = payload[field] + 1 if field == "expires_at" else payload[field] + "x"
    assert not wire_invites.v1_signature_valid(payload)


def test_expired_v1_token_fails_verification_and_join(mesh, api, peer):
    # Given a correctly signed token that expired a minute ago, stored with the same expiry
    expires = int(time.time()) - 60
    token, payload, canonical = hand_v1(
        signing_key=hand_signing_key(mesh),
        mesh_id=mesh.id,
        mesh_slug=mesh.slug,
        expires_at=expires,
        root_key=mesh.root_key_b64url(),
    )
    store_invite(mesh, token, canonical, expires_at=datetime.fromtimestamp(expires, UTC))

    # When it is verified and used
    with pytest.raises(wire_invites.InviteError) as caught:
        wire_invites.v1_verify(token)
    response = api.post("/join", body=join_body(token, payload, peer))

    # Then the client refuses it as expired and the server as invite_expired
    assert caught.value.code == "expired"
    assert response.json() == {"ok": False, "error": "invite_expired"}


def test_v2_claim_seals_the_mesh_root_key_to_the_claimant(mesh, owner_actor, api):
    # Given an invite and a claimant's fresh x25519 keypair
    invite = services.invite_create(actor=owner_actor, max_uses=1)
    recipient = nacl.public.PrivateKey.generate()

    # When it claims the short code
    response = api.post(
        f"/invites/{invite.code}/claim", body={"recipient_x25519_pubkey": b64url(bytes(recipient.public_key))}
    )

    # Then the sealed root key opens with its secret and equals the mesh root key
    assert response.status_code == 200, response.content
    body = response.json()
    root_key = nacl.public.SealedBox(recipient).decrypt(unb64url(body["sealed_root_key"]))
    assert len(root_key) == 32
    assert b64url(root_key) == mesh.root_key_b64url()
    assert body["mesh_id"] == mesh.id and body["owner_pubkey"] == mesh.owner_pubkey
    assert set(body) == {"sealed_root_key", "mesh_id", "member_id", "owner_pubkey", "canonical_v2", "mesh_slug", "broker_url"}


def test_v2_capability_canonical_string_is_byte_exact_and_signed(mesh, owner_actor, api):
    # Given an invite
    invite = services.invite_create(actor=owner_actor, role="admin")
    recipient = nacl.public.PrivateKey.generate()

    # When it is claimed
    body = api.post(
        f"/invites/{invite.code}/claim", body={"recipient_x25519_pubkey": b64url(bytes(recipient.public_key))}
    ).json()

    # Then canonical_v2 is the spec's text, and the stored capability signs exactly those bytes
    expected = f"v=2|{mesh.id}|{invite.id}|{int(invite.expires_at.timestamp())}|admin|{mesh.owner_pubkey}"
    assert body["canonical_v2"] == expected
    capability = json.loads(invite.capability_v2)
    assert capability["canonical"] == expected
    verify_key = nacl.signing.VerifyKey(bytes.fromhex(mesh.owner_pubkey))
    verify_key.verify(expected.encode("utf-8"), bytes.fromhex(capability["signature"]))


def test_v2_claim_rejects_a_capability_that_no_longer_matches_the_row(mesh, owner_actor, api):
    # Given an invite whose expiry was changed behind the signature's back
    invite = services.invite_create(actor=owner_actor)
    Invite.objects.filter(pk=invite.pk).update(expires_at=invite.expires_at + timedelta(days=1))
    recipient = nacl.public.PrivateKey.generate()

    # When it is claimed
    response = api.post(
        f"/invites/{invite.code}/claim", body={"recipient_x25519_pubkey": b64url(bytes(recipient.public_key))}
    )

    # Then the recomputed canonical text does not match: bad_signature, and no use is taken
    assert response.status_code == 400
    assert response.json()["error"] == "bad_signature"
    assert Invite.objects.get(pk=invite.pk).used_count == 0
