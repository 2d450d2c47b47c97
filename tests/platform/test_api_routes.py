"""`/api/v1` behaviour beyond permissions: shapes, validation (400/422), unknown routes and methods, CORS,
no CSRF, the API key secret shown exactly once, and last_used_at written at most once a minute."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from meshes import services
from meshes.models import ApiKey, AuditEvent, Invite, Member

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_secret(key_factory):
    return key_factory(["admin"], label="admin bot")[1]


def test_me_describes_the_key_and_its_mesh(api, key_factory, mesh):
    key, secret = key_factory(["read", "send"], label="ci bot")
    body = api.get("/api/v1/me", secret).json()
    assert body == {
        "mesh": {"id": mesh.id, "name": "Test Mesh", "slug": "test-mesh"},
        "key": {
            "id": key.id,
            "label": "ci bot",
            "prefix": secret[:11],
            "capabilities": ["send", "read"],
            "topicScopes": None,
            "expiresAt": None,
        },
    }


def test_members_lists_live_members_only(api, key_factory, mesh, owner_actor):
    gone = Member.objects.create(mesh=mesh, display_name="gone", pubkey="ab" * 32)
    services.member_remove(actor=owner_actor, member_id=gone.id)
    _, secret = key_factory(["read"])
    members = api.get("/api/v1/members", secret).json()["members"]
    assert [(m["role"], m["displayName"]) for m in members] == [("owner", "owner")]
    assert set(members[0]) == {"id", "displayName", "role", "roleTag", "pubkey", "groups", "joinedAt", "lastSeenAt"}


def test_invite_create_returns_links_code_and_expiry(api, admin_secret, mesh, settings):
    response = api.post("/api/v1/invites", admin_secret, {"role": "admin", "maxUses": 3, "expiresInDays": 2})
    assert response.status_code == 201
    body = response.json()
    invite = Invite.objects.get(pk=body["id"])
    assert (invite.mesh_id, invite.role, invite.max_uses) == (mesh.id, "admin", 3)
    assert body["code"] == invite.code and body["token"] == invite.token
    assert body["ic"] == f"ic://join/{invite.token}"
    assert body["joinUrl"] == f"http://testserver/join/{invite.token}"  # the address the API was called at
    assert body["shortUrl"] == f"http://testserver/i/{invite.code}"
    assert body["expiresAt"].endswith(".000Z") and body["state"] == "active"
    assert AuditEvent.objects.get(event_type="invite_created").payload["via"] == "api"


def test_invite_list_shows_links_only_for_active_invites(api, admin_secret, owner_actor):
    live = services.invite_create(actor=owner_actor)
    dead = services.invite_create(actor=owner_actor, role="admin")
    services.invite_revoke(actor=owner_actor, invite_id=dead.id)
    listed = {i["id"]: i for i in api.get("/api/v1/invites", admin_secret).json()["invites"]}
    assert listed[live.id]["token"] == live.token and "shortUrl" in listed[live.id]
    assert listed[dead.id]["state"] == "revoked" and "token" not in listed[dead.id]


def test_invite_revoke_route(api, admin_secret, owner_actor):
    invite = services.invite_create(actor=owner_actor)
    first = api.post(f"/api/v1/invites/{invite.id}/revoke", admin_secret)
    again = api.post(f"/api/v1/invites/{invite.id}/revoke", admin_secret)
    missing = api.post("/api/v1/invites/NoSuchInvite/revoke", admin_secret)
    assert first.status_code == again.status_code == 200
    assert first.json()["state"] == "revoked" and first.json()["revokedAt"] == again.json()["revokedAt"]
    assert (missing.status_code, missing.json()["code"]) == (404, "invite_not_found")


@pytest.mark.parametrize(
    "body, message",
    [
        ({"role": "owner"}, "role must be admin or member"),
        ({"maxUses": 0}, "max uses must be between 1 and 1000"),
        ({"maxUses": "many"}, "max uses must be a whole number"),
        ({"expiresInDays": 366}, "expiry (days) must be between 1 and 365"),
    ],
)
def test_invite_create_validation_is_400_invalid_args(api, admin_secret, body, message):
    response = api.post("/api/v1/invites", admin_secret, body)
    assert response.status_code == 400
    assert response.json() == {"code": "invalid_args", "message": message, "status": 400}


@pytest.mark.parametrize("path", ["/api/v1/invites", "/api/v1/api-keys", "/api/v1/api-keys/revoke"])
@pytest.mark.parametrize(
    ("raw", "code"),
    [(b"{broken", "invalid_json"), (b"[1, 2]", "not_an_object"), (b'"text"', "not_an_object"), (b"\xff\xfe", "invalid_utf8")],
)
def test_malformed_json_body_is_400(api, admin_secret, path, raw, code):
    response = api.post(path, admin_secret, raw=raw)
    assert response.status_code == 400
    assert response.json()["code"] == code and response.json()["status"] == 400


@pytest.mark.parametrize(
    "body, code",
    [
        ({"capabilities": ["read"]}, "invalid_args"),
        ({"label": "x"}, "invalid_args"),
        ({"label": "x", "capabilities": ["root"]}, "invalid_args"),
        ({"label": "x", "capabilities": ["read"], "expiresAt": "tomorrow"}, "invalid_args"),
        ({"label": "x", "capabilities": ["read"], "expiresAt": "2020-01-01T00:00:00Z"}, "invalid_args"),
        ({"label": "x", "capabilities": ["read"], "topicScopes": "general"}, "invalid_args"),
    ],
)
def test_api_key_create_validation(api, admin_secret, body, code):
    response = api.post("/api/v1/api-keys", admin_secret, body)
    assert (response.status_code, response.json()["code"]) == (400, code)


def test_api_key_create_with_expiry_and_scopes(api, admin_secret):
    expires = (timezone.now() + timedelta(days=1)).replace(microsecond=0)
    response = api.post(
        "/api/v1/api-keys",
        admin_secret,
        {"label": "scoped", "capabilities": "read,send", "topicScopes": ["deploys"], "expiresAt": expires.isoformat()},
    )
    assert response.status_code == 201
    key = ApiKey.objects.get(pk=response.json()["id"])
    assert (key.capabilities, key.topic_scopes, key.expires_at) == (["send", "read"], ["deploys"], expires)


def test_unknown_route_and_wrong_method_answer_json(api, admin_secret):
    unknown = api.get("/api/v1/nope", admin_secret)
    wrong = api.call("DELETE", "/api/v1/me", admin_secret)
    put = api.call("PUT", "/api/v1/invites", admin_secret, {})
    assert (unknown.status_code, unknown.json()["code"]) == (404, "not_found")
    assert (wrong.status_code, wrong.json()["code"]) == (405, "method_not_allowed")
    assert wrong["Allow"] == "GET, OPTIONS"
    assert (put.status_code, put["Allow"]) == (405, "GET, POST, OPTIONS")


def test_options_preflight_and_cors(api):
    response = api.call("OPTIONS", "/api/v1/me")
    assert response.status_code == 204
    assert response["Access-Control-Allow-Origin"] == "*"
    assert "Authorization" in response["Access-Control-Allow-Headers"]


def test_post_needs_no_csrf_token_even_with_a_session(api, admin_secret, owner):
    api.client.force_login(owner)  # a session cookie must not switch on CSRF for bearer routes
    assert api.post("/api/v1/invites", admin_secret, {}).status_code == 201


# --- the secret -----------------------------------------------------------------------------------------


def test_api_key_secret_appears_only_in_the_creation_response(api, admin_secret, owner_actor):
    # Given a key created over the API
    created = api.post("/api/v1/api-keys", admin_secret, {"label": "once", "capabilities": ["read"]})
    secret = created.json()["secret"]
    key = ApiKey.objects.get(pk=created.json()["id"])
    assert secret.startswith("cm_") and len(secret) == 46 and created.json()["prefix"] == secret[:11]

    # When every read route is called, by the new key and by the admin key
    services.invite_create(actor=owner_actor)
    responses = [
        api.get(path, caller)
        for caller in (secret, admin_secret)
        for path in ("/api/v1/me", "/api/v1/members", "/api/v1/invites", "/api/v1/api-keys")
    ]
    responses.append(api.post("/api/v1/api-keys/revoke", admin_secret, {"id": key.id}))

    # Then neither secret nor any hash is ever in a body again
    for response in responses:
        text = response.content.decode()
        for leaked in (secret, admin_secret, key.secret_hash, *ApiKey.objects.values_list("secret_hash", flat=True)):
            assert leaked not in text, response.request["PATH_INFO"]
    listed = api.get("/api/v1/api-keys", admin_secret).json()["keys"]
    assert all("secret" not in entry and "secretHash" not in entry for entry in listed)
    assert not AuditEvent.objects.filter(payload__icontains=secret[3:]).exists()


# --- last_used_at ---------------------------------------------------------------------------------------


def test_last_used_at_is_written_at_most_once_a_minute(api, key_factory):
    # Given a fresh key
    key, secret = key_factory(["read"])
    assert key.last_used_at is None

    # When it is used three times in a row
    api.get("/api/v1/me", secret)
    first = ApiKey.objects.get(pk=key.pk).last_used_at
    with CaptureQueriesContext(connection) as queries:
        api.get("/api/v1/me", secret)
        api.get("/api/v1/members", secret)

    # Then the first use writes it and the next ones within the minute write nothing
    assert first is not None
    assert ApiKey.objects.get(pk=key.pk).last_used_at == first
    assert not [q for q in queries.captured_queries if q["sql"].lstrip().upper().startswith("UPDATE")]

    # When a minute has passed since then, the next use writes it again
    stale = timezone.now() - timedelta(seconds=61)
    ApiKey.objects.filter(pk=key.pk).update(last_used_at=stale)
    api.get("/api/v1/me", secret)
    assert ApiKey.objects.get(pk=key.pk).last_used_at > stale + timedelta(seconds=60)


def test_last_used_at_just_under_a_minute_is_kept(key_factory):
    key, secret = key_factory(["read"])
    recent = timezone.now() - timedelta(seconds=50)
    ApiKey.objects.filter(pk=key.pk).update(last_used_at=recent)
    assert services.api_key_authenticate(secret=secret).last_used_at == recent
    assert ApiKey.objects.get(pk=key.pk).last_used_at == recent


def test_control_characters_never_reach_the_database(api, admin_secret):
    label = api.post("/api/v1/api-keys", admin_secret, {"label": "ci\x00bot", "capabilities": ["read"]})
    scopes = api.post(
        "/api/v1/api-keys", admin_secret, {"label": "x", "capabilities": ["read"], "topicScopes": ["a\x00"]}
    )
    empty = api.post("/api/v1/api-keys", admin_secret, {"label": "\x00\x01", "capabilities": ["read"]})
    assert (label.status_code, label.json()["label"]) == (201, "cibot")
    assert (scopes.status_code, scopes.json()["code"]) == (400, "invalid_args")
    assert (empty.status_code, empty.json()["code"]) == (400, "invalid_args")


def test_body_beyond_the_upload_limit_is_413_json(api, admin_secret, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    response = api.post("/api/v1/invites", admin_secret, {"role": "member", "pad": "x" * 2000})
    assert response.status_code == 413
    assert response.json()["code"] == "payload_too_large" and response.json()["status"] == 413


@pytest.mark.parametrize(("given", "stored"), [("2999-01-01", "2999-01-01T00:00:00.000Z"), ("2999-01-01T10:00:00", "2999-01-01T10:00:00.000Z")])
def test_api_key_expiry_without_an_offset_is_utc_as_on_the_socket(api, admin_secret, given, stored):
    """Given an expiry with no offset, when an admin key creates a key over /api/v1, then it is read as UTC —
    the same rule `apikey_create` applies over the WebSocket (one parser in the service)."""
    response = api.post("/api/v1/api-keys", admin_secret, {"label": "utc", "capabilities": ["read"], "expiresAt": given})
    assert response.status_code == 201, response.json()
    assert response.json()["expiresAt"] == stored
