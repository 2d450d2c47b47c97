"""Every dashboard form is protected against cross-site request forgery."""

from __future__ import annotations

import re

import pytest
from django.test import Client
from django.urls import reverse

from meshes.models import Mesh

pytestmark = pytest.mark.django_db


@pytest.fixture
def csrf_client(owner):
    client = Client(enforce_csrf_checks=True)
    client.force_login(owner)
    return client


def _posts(world):
    mesh_id = world.mesh.id
    return [
        (reverse("dashboard:mesh_create"), {"name": "Forged"}),
        (reverse("dashboard:mesh_rename", args=[mesh_id]), {"name": "Forged"}),
        (reverse("dashboard:mesh_archive", args=[mesh_id]), {"confirm_name": world.mesh.name}),
        (reverse("dashboard:invite_create", args=[mesh_id]), {"role": "admin", "max_uses": 9, "expires_in_days": 9}),
        (reverse("dashboard:invite_revoke", args=[mesh_id, world.invite.id]), {}),
        (reverse("dashboard:api_key_create", args=[mesh_id]), {"label": "forged", "capabilities": ["admin"]}),
        (reverse("dashboard:api_key_revoke", args=[mesh_id]), {"key_ref": world.api_key.id}),
        (reverse("dashboard:member_role", args=[mesh_id, world.target.id]), {"role": "admin"}),
        (reverse("dashboard:member_remove", args=[mesh_id, world.target.id]), {}),
        (reverse("dashboard:invite_accept", args=[world.invite.code]), {}),
    ]


def test_posts_without_a_token_are_refused(csrf_client, world):
    for url, data in _posts(world):
        assert csrf_client.post(url, data).status_code == 403, url
    world.mesh.refresh_from_db()
    world.invite.refresh_from_db()
    world.api_key.refresh_from_db()
    assert world.mesh.name == "Test Mesh" and world.mesh.archived_at is None
    assert world.invite.revoked_at is None and world.api_key.revoked_at is None
    assert not Mesh.objects.filter(name="Forged").exists()


def test_post_with_the_page_token_goes_through(csrf_client):
    page = csrf_client.get(reverse("dashboard:mesh_create")).content.decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    response = csrf_client.post(reverse("dashboard:mesh_create"), {"name": "Real", "csrfmiddlewaretoken": token})
    assert response.status_code == 302
    assert Mesh.objects.filter(name="Real").exists()


def test_csrf_failure_page_is_explained(csrf_client):
    response = csrf_client.post(reverse("dashboard:mesh_create"), {"name": "Forged"})
    assert response.status_code == 403 and "This form has expired" in response.content.decode()
