"""Forms show the service's message next to them and keep what was typed."""

from __future__ import annotations

import pytest
from django.urls import reverse

from meshes import services
from meshes.models import ApiKey

pytestmark = pytest.mark.django_db


def test_invite_out_of_range_keeps_input(owner_client, mesh):
    response = owner_client.post(
        reverse("dashboard:invite_create", args=[mesh.id]), {"role": "admin", "max_uses": 5000, "expires_in_days": 12}
    )
    assert response.status_code == 400
    page = response.content.decode()
    assert "max uses must be between 1 and 1000" in page
    assert 'value="5000"' in page and 'value="12"' in page
    assert '<option value="admin" selected>' in page


def test_key_without_capabilities_keeps_label(owner_client, mesh):
    response = owner_client.post(reverse("dashboard:api_key_create", args=[mesh.id]), {"label": "my-bot"})
    assert response.status_code == 400
    page = response.content.decode()
    assert "choose at least one capability" in page and 'value="my-bot"' in page
    assert not ApiKey.objects.filter(mesh=mesh).exists()


def test_key_with_expiry(owner_client, mesh):
    owner_client.post(
        reverse("dashboard:api_key_create", args=[mesh.id]),
        {"label": "short-lived", "capabilities": ["send"], "expires_in_days": 2},
    )
    key = ApiKey.objects.get(mesh=mesh)
    assert key.expires_at is not None and key.capabilities == ["send"]


def test_mesh_name_too_short(owner_client):
    response = owner_client.post(reverse("dashboard:mesh_create"), {"name": "x"})
    assert response.status_code == 400
    assert "name must be 2–80 characters" in response.content.decode()


def test_rename_error_keeps_input(owner_client, mesh):
    response = owner_client.post(reverse("dashboard:mesh_rename", args=[mesh.id]), {"name": "y" * 90})
    assert response.status_code == 400
    assert "name must be 2–80 characters" in response.content.decode()
    assert "y" * 90 in response.content.decode()


def test_archive_needs_the_name_typed(owner_client, mesh):
    response = owner_client.post(reverse("dashboard:mesh_archive", args=[mesh.id]), {"confirm_name": "nope"})
    assert response.status_code == 400
    assert "exactly to archive this mesh" in response.content.decode()
    mesh.refresh_from_db()
    assert mesh.archived_at is None


class TestRevokeByReference:
    def test_short_prefix_is_refused(self, owner_client, mesh, owner_actor):
        key, _ = services.api_key_create(actor=owner_actor, label="a", capabilities=["read"])
        response = owner_client.post(reverse("dashboard:api_key_revoke", args=[mesh.id]), {"key_ref": key.id[:4]})
        assert response.status_code == 400
        assert "at least 6 characters" in response.content.decode()

    def test_not_found(self, owner_client, mesh, owner_actor):
        services.api_key_create(actor=owner_actor, label="a", capabilities=["read"])
        response = owner_client.post(reverse("dashboard:api_key_revoke", args=[mesh.id]), {"key_ref": "zzzzzzzzz"})
        assert response.status_code == 404
        page = response.content.decode()
        assert "not_found" in page and 'value="zzzzzzzzz"' in page

    def test_not_unique_shows_the_count(self, owner_client, mesh, owner_actor):
        for suffix in ("1", "2"):
            key, _ = services.api_key_create(actor=owner_actor, label=f"k{suffix}", capabilities=["read"])
            ApiKey.objects.filter(pk=key.pk).update(id=f"abcdef{suffix}" + "0" * 25)
        response = owner_client.post(reverse("dashboard:api_key_revoke", args=[mesh.id]), {"key_ref": "abcdef"})
        assert response.status_code == 400
        page = response.content.decode()
        assert "matches 2 keys" in page and "not_unique" in page
        assert not ApiKey.objects.filter(mesh=mesh, revoked_at__isnull=False).exists()

    def test_another_meshs_key_is_not_found(self, owner_client, mesh, make_user):
        from meshes import selectors

        other_owner = make_user()
        other = services.mesh_create(owner=other_owner, name="Other")
        other_actor = selectors.actor_for_user(mesh_id=other.id, user=other_owner)
        foreign, _ = services.api_key_create(actor=other_actor, label="theirs", capabilities=["read"])
        response = owner_client.post(reverse("dashboard:api_key_revoke", args=[mesh.id]), {"key_ref": foreign.id})
        assert response.status_code == 404
        foreign.refresh_from_db()
        assert foreign.revoked_at is None


def test_rename_keeps_the_slug_peers_use(owner_client, mesh, owner_actor):
    """Given a mesh whose peers use `--mesh <slug>` and hold invites naming it, when it is renamed, then the name
    changes, the slug stays, and new invites still carry the old slug; the form says so."""
    slug = mesh.slug
    page = owner_client.get(reverse("dashboard:mesh_settings", args=[mesh.id])).content.decode()
    assert f"--mesh {slug}" in page
    response = owner_client.post(reverse("dashboard:mesh_rename", args=[mesh.id]), {"name": "Something Else Entirely"})
    assert response.status_code == 302
    mesh.refresh_from_db()
    assert mesh.name == "Something Else Entirely" and mesh.slug == slug
    invite = services.invite_create(actor=owner_actor, role="member", max_uses=1, expires_in_days=1)
    assert invite.token_mesh_slug == slug
