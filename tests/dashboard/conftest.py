"""A mesh with one person of each standing, built through the services like real use."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from meshes import services
from meshes.models import ApiKey, Invite, Member, Mesh


def add_member(*, mesh: Mesh, owner_actor, user, role: str) -> Member:
    invite = services.invite_create(actor=owner_actor, role=role, max_uses=1, expires_in_days=1)
    return services.invite_accept_for_user(code=invite.code, user=user)


@dataclass
class World:
    mesh: Mesh
    users: dict  # standing → user: owner, admin, member, outsider
    target: Member  # a plain member the managers act on
    invite: Invite
    api_key: ApiKey
    secret: str


@pytest.fixture
def world(mesh, owner, owner_actor, make_user) -> World:
    users = {"owner": owner, "admin": make_user(), "member": make_user(), "outsider": make_user()}
    add_member(mesh=mesh, owner_actor=owner_actor, user=users["admin"], role="admin")
    add_member(mesh=mesh, owner_actor=owner_actor, user=users["member"], role="member")
    target = add_member(mesh=mesh, owner_actor=owner_actor, user=make_user(), role="member")
    invite = services.invite_create(actor=owner_actor, role="member", max_uses=3, expires_in_days=7)
    api_key, secret = services.api_key_create(actor=owner_actor, label="ci", capabilities=["send", "read"])
    return World(mesh, users, target, invite, api_key, secret)


@pytest.fixture
def owner_client(client, owner):
    client.force_login(owner)
    return client


@pytest.fixture(autouse=True)
def no_broker_presence(monkeypatch):
    """Dashboard tests do not depend on the broker's presence tables; test_live.py opts back in."""
    monkeypatch.setattr("meshes.views.live.online_peers_or_none", lambda mesh_id: None)


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    """These tests create several users each; the production hasher is slow on purpose."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
