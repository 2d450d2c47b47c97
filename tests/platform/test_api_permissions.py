"""`/api/v1` permission matrix: every route × key capability, every kind of bad credential, and a key of
another mesh (which authenticates but only ever sees and touches its own mesh)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import pytest
from django.utils import timezone

from meshes import services
from meshes.models import ApiKey, Invite, Mesh

pytestmark = pytest.mark.django_db


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    capability: str | None  # None: any live key
    success: int
    body: dict | None = None


ROUTES = [
    Route("GET", "/api/v1/me", None, 200),
    Route("GET", "/api/v1/members", "read", 200),
    Route("GET", "/api/v1/invites", "admin", 200),
    Route("POST", "/api/v1/invites", "admin", 201, {"role": "member", "maxUses": 2}),
    Route("POST", "/api/v1/invites/{invite}/revoke", "admin", 200),
    Route("GET", "/api/v1/api-keys", "admin", 200),
    Route("POST", "/api/v1/api-keys", "admin", 201, {"label": "bot", "capabilities": ["send"]}),
    Route("POST", "/api/v1/api-keys/revoke", "admin", 200, {"id": "{victim}"}),
]
CAPABILITIES = ["state_write", "read", "send", "admin"]  # state_write matches no route here


def allowed(route: Route, capability: str) -> bool:
    return route.capability is None or capability in (route.capability, "admin")


@pytest.fixture
def targets(owner_actor, key_factory):
    """An invite and a victim key in the owner's mesh, for the routes that act on one."""
    invite = services.invite_create(actor=owner_actor)
    victim, _ = key_factory(["read"], label="victim")
    return {"invite": invite.id, "victim": victim.id}


def fill(route: Route, targets: dict) -> tuple[str, dict | None]:
    path = route.path.format(**targets)
    body = {k: v.format(**targets) if isinstance(v, str) else v for k, v in (route.body or {}).items()}
    return path, body if route.body is not None else None


@pytest.mark.parametrize("capability", CAPABILITIES)
@pytest.mark.parametrize("route", ROUTES, ids=lambda r: f"{r.method} {r.path}")
def test_capability_matrix(api, key_factory, targets, route, capability):
    # Given a live key of the mesh with exactly one capability
    _key, secret = key_factory([capability])
    path, body = fill(route, targets)

    # When it calls the route
    response = api.call(route.method, path, secret, body)

    # Then it succeeds when the capability suffices, else 403 with the stable code
    if allowed(route, capability):
        assert response.status_code == route.success, response.content
    else:
        assert response.status_code == 403
        assert response.json() == {
            "code": "api_key_missing_capability",
            "message": f"this API key lacks the '{route.capability}' capability",
            "status": 403,
            "capability": route.capability,
        }


def _expire(key: ApiKey) -> None:
    ApiKey.objects.filter(pk=key.pk).update(expires_at=timezone.now() - timedelta(seconds=1))


def _revoke(key: ApiKey) -> None:
    ApiKey.objects.filter(pk=key.pk).update(revoked_at=timezone.now())


def _archive(key: ApiKey) -> None:
    Mesh.objects.filter(pk=key.mesh_id).update(archived_at=timezone.now())


BAD_CREDENTIALS = {
    # name: (how to spoil an admin key, header value or None for "use the spoiled key", expected code)
    "missing": (None, "", "api_key_missing"),
    "not_bearer": (None, "Basic dXNlcjpwYXNz", "api_key_missing"),
    "empty_bearer": (None, "Bearer ", "api_key_missing"),
    "malformed": (None, "Bearer cm_short", "api_key_invalid"),
    "unknown": (None, "Bearer cm_" + "A" * 43, "api_key_invalid"),
    "revoked": (_revoke, None, "api_key_invalid"),
    "expired": (_expire, None, "api_key_invalid"),
    "archived_mesh": (_archive, None, "api_key_invalid"),
}


@pytest.mark.parametrize("credential", list(BAD_CREDENTIALS))
@pytest.mark.parametrize("route", ROUTES, ids=lambda r: f"{r.method} {r.path}")
def test_bad_credentials_are_401(api, key_factory, targets, route, credential):
    # Given an admin key spoiled in one way (or no usable header at all)
    spoil, header, code = BAD_CREDENTIALS[credential]
    key, secret = key_factory(["admin"])
    if spoil:
        spoil(key)
        header = f"Bearer {secret}"
    path, body = fill(route, targets)

    # When it calls the route
    headers = {"Authorization": header} if header else {}
    response = api.call(route.method, path, body=body, headers=headers)

    # Then 401 with the stable code, and nothing changed
    assert response.status_code == 401
    assert response.json()["code"] == code and response.json()["status"] == 401
    assert Invite.objects.get(pk=targets["invite"]).revoked_at is None
    assert ApiKey.objects.get(pk=targets["victim"]).revoked_at is None


# --- another mesh's key ---------------------------------------------------------------------------------


@pytest.fixture
def foreign_secret(other_actor, key_factory):
    _key, secret = key_factory(["admin"], actor=other_actor)
    return secret


def test_other_mesh_key_sees_only_its_mesh(api, foreign_secret, other_mesh, mesh, targets):
    me = api.get("/api/v1/me", foreign_secret).json()
    members = api.get("/api/v1/members", foreign_secret).json()["members"]
    invites = api.get("/api/v1/invites", foreign_secret).json()["invites"]
    keys = api.get("/api/v1/api-keys", foreign_secret).json()["keys"]

    assert me["mesh"]["id"] == other_mesh.id
    assert {m["id"] for m in members} == set(other_mesh.members.values_list("id", flat=True))
    assert invites == []
    assert {k["id"] for k in keys} == set(other_mesh.api_keys.values_list("id", flat=True))
    assert targets["victim"] not in {k["id"] for k in keys}


def test_other_mesh_key_cannot_touch_this_mesh(api, foreign_secret, mesh, other_mesh, targets):
    revoke_invite = api.post(f"/api/v1/invites/{targets['invite']}/revoke", foreign_secret)
    revoke_key = api.post("/api/v1/api-keys/revoke", foreign_secret, {"id": targets["victim"]})
    created = api.post("/api/v1/invites", foreign_secret, {})

    assert revoke_invite.status_code == 404 and revoke_invite.json()["code"] == "invite_not_found"
    assert revoke_key.json() == {"status": "not_found"}
    assert Invite.objects.get(pk=targets["invite"]).revoked_at is None
    assert ApiKey.objects.get(pk=targets["victim"]).revoked_at is None
    assert Invite.objects.get(pk=created.json()["id"]).mesh_id == other_mesh.id
