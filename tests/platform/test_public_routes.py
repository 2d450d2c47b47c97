"""Public routes: v2 claim (both paths, error order, our peer_pubkey extension), short code → token, and
the invite preview's reasons (platform.md §3.4, protocol.md §6.5)."""

from __future__ import annotations

import json
from datetime import timedelta

import nacl.public
import pytest
from django.utils import timezone

from meshes import services
from meshes.models import AuditEvent, Invite, Member, Mesh
from tests.support.oracles import b64url, unb64url

pytestmark = pytest.mark.django_db

CLAIM_PATHS = ["/invites/{code}/claim", "/api/public/invites/{code}/claim"]


def x25519_public() -> str:
    return b64url(bytes(nacl.public.PrivateKey.generate().public_key))


@pytest.fixture
def invite(owner_actor):
    return services.invite_create(actor=owner_actor, max_uses=2)


def claim(api, code, body, path=CLAIM_PATHS[0]):
    response = api.post(path.format(code=code), body=body)
    return response.status_code, response.json()


# --- v2 claim -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", CLAIM_PATHS)
def test_claim_creates_an_unbound_member_and_takes_a_use(api, invite, mesh, path):
    status, body = claim(api, invite.code, {"recipient_x25519_pubkey": x25519_public()}, path)
    member = Member.objects.get(pk=body["member_id"])
    assert status == 200
    assert (member.mesh_id, member.pubkey, member.role) == (mesh.id, None, "member")
    assert member.display_name.startswith("member-")
    assert Invite.objects.get(pk=invite.pk).used_count == 1


def test_claim_with_peer_pubkey_binds_the_identity(api, invite, peer):
    body = {"recipient_x25519_pubkey": x25519_public(), "peer_pubkey": peer.public_hex, "display_name": "box"}
    status, answer = claim(api, invite.code, body)
    member = Member.objects.get(pk=answer["member_id"])
    assert status == 200
    assert (member.pubkey, member.display_name) == (peer.public_hex, "box")
    assert Invite.objects.get(pk=invite.pk).used_count == 1


def test_claim_naming_an_existing_members_key_is_refused(api, invite, peer, mesh):
    """Given a member with key K, when anyone claims again naming K, then the claim is refused (409, no sealed root
    key), the invite keeps its uses and no member or audit record is written."""
    body = {"recipient_x25519_pubkey": x25519_public(), "peer_pubkey": peer.public_hex}
    assert claim(api, invite.code, body)[0] == 200
    audit_before = AuditEvent.objects.filter(mesh=mesh).count()
    for _ in range(3):
        status, answer = claim(api, invite.code, {**body, "recipient_x25519_pubkey": x25519_public()})
        assert (status, answer["error"]) == (409, "already_member")
        assert "sealed_root_key" not in answer
    assert Invite.objects.get(pk=invite.pk).used_count == 1
    assert Member.objects.filter(mesh=mesh, pubkey=peer.public_hex).count() == 1
    assert AuditEvent.objects.filter(mesh=mesh).count() == audit_before


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"recipient_x25519_pubkey": "short"},
        {"recipient_x25519_pubkey": "!" * 43},
        {"recipient_x25519_pubkey": b64url(b"x" * 31) + "AAAA"},
        {"recipient_x25519_pubkey": b64url(b"x" * 32), "peer_pubkey": "nothex"},
        {"recipient_x25519_pubkey": b64url(b"x" * 32), "display_name": 7},
    ],
)
def test_claim_malformed_body_is_400(api, invite, body):
    status, answer = claim(api, invite.code, body)
    assert (status, answer["error"]) == (400, "malformed")
    assert Invite.objects.get(pk=invite.pk).used_count == 0


def test_claim_bad_json_and_oversized_body(api, invite):
    bad = api.post(f"/invites/{invite.code}/claim", raw=b"{nope")
    big = api.post(f"/invites/{invite.code}/claim", body={"recipient_x25519_pubkey": "A" * 70_000})
    assert (bad.status_code, bad.json()["error"]) == (400, "malformed")
    assert (big.status_code, big.json()["error"], big.json()["code"]) == (413, "payload too large", "payload_too_large")


def test_claim_errors_in_order(api, owner_actor, mesh):
    body = {"recipient_x25519_pubkey": x25519_public()}
    invite = services.invite_create(actor=owner_actor, max_uses=1)
    assert claim(api, "UNKNOWN1", body) == (404, {"error": "not_found", "detail": "invite not found"})
    assert claim(api, "bad-code!", body)[0] == 404

    # exhausted < expired < revoked < archived mesh (not_found): each earlier check wins over later ones
    claim(api, invite.code, body)
    assert claim(api, invite.code, body)[1]["error"] == "exhausted"
    Invite.objects.filter(pk=invite.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert claim(api, invite.code, body)[1]["error"] == "expired"
    services.invite_revoke(actor=owner_actor, invite_id=invite.id)
    assert claim(api, invite.code, body) == (410, {"error": "revoked", "detail": "invite revoked"})
    Mesh.objects.filter(pk=mesh.pk).update(archived_at=timezone.now())
    assert claim(api, invite.code, body) == (404, {"error": "not_found", "detail": "invite not found"})


def test_claim_get_is_405(api, invite):
    response = api.get(f"/invites/{invite.code}/claim")
    assert (response.status_code, response.json()) == (405, {"error": "method_not_allowed"})


# --- short code → token ---------------------------------------------------------------------------------


def test_invite_code_lookup(api, invite, owner_actor):
    found = api.get(f"/api/public/invite-code/{invite.code}")
    unknown = api.get("/api/public/invite-code/ZZZZZZZZ")
    assert (found.status_code, found.json()) == (200, {"found": True, "token": invite.token})
    assert (unknown.status_code, unknown.json()) == (404, {"found": False})
    services.invite_revoke(actor=owner_actor, invite_id=invite.id)
    assert api.get(f"/api/public/invite-code/{invite.code}").json() == {"found": False}


# --- preview --------------------------------------------------------------------------------------------


def preview(api, token):
    response = api.get(f"/api/public/invite/{token}")
    assert response.status_code == 200
    return response.json(), response["Cache-Control"]


def test_preview_of_a_valid_invite(api, invite, mesh):
    body, cache = preview(api, invite.token)
    assert cache == "public, max-age=30"
    assert body == {
        "valid": True,
        "meshName": "Test Mesh",
        "meshSlug": "test-mesh",
        "inviterName": "owner",
        "memberCount": 1,
        "role": "member",
        "expiresAt": body["expiresAt"],
        "maxUses": 2,
        "usedCount": 0,
        "token": invite.token,
    }


def _tamper(token: str) -> str:
    payload = json.loads(unb64url(token))
    payload["mesh_slug"] = "other"
    return b64url(json.dumps(payload, separators=(",", ":")).encode())


def test_preview_reasons_in_order(api, owner_actor, mesh, make_user):
    invite = services.invite_create(actor=owner_actor, max_uses=1)
    assert preview(api, "not-a-token")[0]["reason"] == "malformed"
    assert preview(api, _tamper(invite.token))[0] == {
        "valid": False,
        "reason": "bad_signature",
        "meshName": None,
        "inviterName": None,
        "expiresAt": None,
    }
    Invite.objects.filter(pk=invite.pk).update(used_count=1)
    assert preview(api, invite.token)[0]["reason"] == "exhausted"
    Invite.objects.filter(pk=invite.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert preview(api, invite.token)[0]["reason"] == "expired"
    Mesh.objects.filter(pk=mesh.pk).update(archived_at=timezone.now())
    assert preview(api, invite.token)[0]["reason"] == "mesh_archived"
    services.invite_revoke(actor=owner_actor, invite_id=invite.id)
    body, cache = preview(api, invite.token)
    assert (body["reason"], body["meshName"], cache) == ("revoked", "Test Mesh", "no-store")
    Invite.objects.filter(pk=invite.pk).delete()
    assert preview(api, invite.token)[0]["reason"] == "not_found"


def test_claim_display_name_control_characters_are_dropped(api, invite):
    status, body = claim(api, invite.code, {"recipient_x25519_pubkey": x25519_public(), "display_name": "b\x00ox"})
    assert status == 200 and Member.objects.get(pk=body["member_id"]).display_name == "box"
