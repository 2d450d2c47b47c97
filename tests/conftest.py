"""Shared fixtures. Tests run against whatever DATABASE_URL / REDIS_URL say (Postgres and Redis in CI)."""

from __future__ import annotations

import pytest

from meshes import selectors, services


@pytest.fixture
def make_user(django_user_model):
    counter = {"n": 0}

    def make(email: str | None = None, password: str = "correct horse battery staple"):
        counter["n"] += 1
        email = email or f"user{counter['n']}@example.test"
        return django_user_model.objects.create_user(username=email, email=email, password=password)

    return make


@pytest.fixture
def owner(make_user):
    return make_user("owner@example.test")


@pytest.fixture
def mesh(owner):
    return services.mesh_create(owner=owner, name="Test Mesh")


@pytest.fixture
def owner_actor(mesh, owner):
    return selectors.actor_for_user(mesh_id=mesh.id, user=owner)
