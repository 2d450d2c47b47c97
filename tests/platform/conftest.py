"""Fixtures for the platform tests: API keys with chosen capabilities, a second mesh, an HTTP helper, peers."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass

import pytest
from django.conf import settings
from django.test import Client

from meshes import selectors, services
from protocol.crypto import SigningKeypair

POSTGRES_REASON = (
    "needs Postgres (real row locks and concurrent transactions): "
    "set DATABASE_URL=postgres://postgres@127.0.0.1:5432/test"
)


@pytest.fixture(autouse=True)
def _postgres_marker(request):
    """`@pytest.mark.postgres` tests skip on SQLite with the reason, or fail when CI requires services."""
    if request.node.get_closest_marker("postgres") and not settings.IS_POSTGRES:
        if os.environ.get("CLAUDEMESH_REQUIRE_SERVICES") == "1":
            pytest.fail(POSTGRES_REASON)
        pytest.skip(POSTGRES_REASON)


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    # Every test creates users; the production hasher's work factor would dominate the run time.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@dataclass
class Api:
    """Calls the server in-process with an optional bearer secret; bodies are JSON."""

    client: Client

    def call(
        self, method: str, path: str, secret: str | None = None, body=None, raw: bytes | None = None, headers=None
    ):
        headers = headers if headers is not None else ({"Authorization": f"Bearer {secret}"} if secret else {})
        data = raw if raw is not None else (json.dumps(body) if body is not None else "")
        return self.client.generic(method, path, data=data, content_type="application/json", headers=headers)

    def get(self, path: str, secret: str | None = None):
        return self.call("GET", path, secret)

    def post(self, path: str, secret: str | None = None, body=None, raw: bytes | None = None):
        return self.call("POST", path, secret, body, raw)


@pytest.fixture
def api():
    # enforce_csrf_checks: proves these routes do not depend on cookies or CSRF tokens.
    return Api(Client(enforce_csrf_checks=True))


@pytest.fixture
def key_factory(owner_actor):
    """make(caps, actor=owner_actor, **kwargs) → (ApiKey, secret)."""

    def make(capabilities=("read",), actor=None, label="test key", **kwargs):
        return services.api_key_create(
            actor=actor or owner_actor, label=label, capabilities=list(capabilities), **kwargs
        )

    return make


@pytest.fixture
def other_owner(make_user):
    return make_user("other-owner@example.test")


@pytest.fixture
def other_mesh(other_owner):
    return services.mesh_create(owner=other_owner, name="Other Mesh")


@pytest.fixture
def other_actor(other_mesh, other_owner):
    return selectors.actor_for_user(mesh_id=other_mesh.id, user=other_owner)


@pytest.fixture
def peer():
    return SigningKeypair.generate()
