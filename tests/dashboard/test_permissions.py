"""Who may do what from the dashboard: outsiders see nothing (404), members see but cannot change (403),
admins manage everything but archiving, the owner does everything."""

from __future__ import annotations

import pytest
from django.urls import reverse
from django.utils import timezone

from meshes.models import ApiKey, Invite, Member, Mesh, Role

pytestmark = pytest.mark.django_db

STANDINGS = ("owner", "admin", "member", "outsider")


def _request(world, action):
    """(method, url, data) for one dashboard action against the world's mesh."""
    mesh_id = world.mesh.id
    return {
        "view mesh": ("get", reverse("dashboard:mesh", args=[mesh_id]), None),
        "create invite": (
            "post",
            reverse("dashboard:invite_create", args=[mesh_id]),
            {"role": "member", "max_uses": 2, "expires_in_days": 3},
        ),
        "revoke invite": ("post", reverse("dashboard:invite_revoke", args=[mesh_id, world.invite.id]), {}),
        "create key": (
            "post",
            reverse("dashboard:api_key_create", args=[mesh_id]),
            {"label": "bot", "capabilities": ["read"]},
        ),
        "revoke key": ("post", reverse("dashboard:api_key_revoke", args=[mesh_id]), {"key_ref": world.api_key.id}),
        "change role": (
            "post",
            reverse("dashboard:member_role", args=[mesh_id, world.target.id]),
            {"role": "admin"},
        ),
        "remove member": ("post", reverse("dashboard:member_remove", args=[mesh_id, world.target.id]), {}),
        "rename": ("post", reverse("dashboard:mesh_rename", args=[mesh_id]), {"name": "Renamed Mesh"}),
        "archive": ("post", reverse("dashboard:mesh_archive", args=[mesh_id]), {"confirm_name": world.mesh.name}),
    }[action]


def _done(world, action) -> bool:
    """Whether the action took effect in the database."""
    mesh = Mesh.objects.get(pk=world.mesh.pk)
    return {
        "view mesh": True,
        "create invite": Invite.objects.filter(mesh=mesh).count() > 4,
        "revoke invite": Invite.objects.get(pk=world.invite.pk).revoked_at is not None,
        "create key": ApiKey.objects.filter(mesh=mesh).count() == 2,
        "revoke key": ApiKey.objects.get(pk=world.api_key.pk).revoked_at is not None,
        "change role": Member.objects.get(pk=world.target.pk).role == Role.ADMIN,
        "remove member": Member.objects.get(pk=world.target.pk).revoked_at is not None,
        "rename": mesh.name == "Renamed Mesh",
        "archive": mesh.archived_at is not None,
    }[action]


def _expected(standing: str, action: str) -> int:
    if standing == "outsider":
        return 404
    if action == "view mesh":
        return 200
    if standing == "member" or (standing == "admin" and action == "archive"):
        return 403
    return 302


ACTIONS = (
    "view mesh",
    "create invite",
    "revoke invite",
    "create key",
    "revoke key",
    "change role",
    "remove member",
    "rename",
    "archive",
)


@pytest.mark.parametrize("standing", STANDINGS)
@pytest.mark.parametrize("action", ACTIONS)
def test_permission_matrix(client, world, standing, action):
    client.force_login(world.users[standing])
    method, url, data = _request(world, action)
    response = getattr(client, method)(url, data) if data is not None else client.get(url)
    expected = _expected(standing, action)
    assert response.status_code == expected, response.content.decode()[:2000]
    if action != "view mesh":
        assert _done(world, action) is (expected == 302)
    if expected == 403:
        page = response.content.decode()
        assert "Not allowed" in page and "only the mesh owner" in page.lower()


@pytest.mark.parametrize("standing", STANDINGS)
@pytest.mark.parametrize("page", ("mesh", "invites", "api_keys", "audit", "mesh_settings", "mesh_live"))
def test_mesh_pages_are_for_members_only(client, world, standing, page):
    client.force_login(world.users[standing])
    response = client.get(reverse(f"dashboard:{page}", args=[world.mesh.id]))
    assert response.status_code == (404 if standing == "outsider" else 200)


def test_signed_out_visitors_are_sent_to_sign_in(client, world):
    response = client.get(reverse("dashboard:mesh", args=[world.mesh.id]))
    assert response.status_code == 302 and response.url.startswith(reverse("account_login"))


def test_unknown_mesh_is_404(owner_client):
    assert owner_client.get(reverse("dashboard:mesh", args=["nosuchmesh"])).status_code == 404


def test_members_get_no_change_forms_and_no_invite_links(client, world):
    client.force_login(world.users["member"])
    mesh_id = world.mesh.id
    invites_page = client.get(reverse("dashboard:invites", args=[mesh_id])).content.decode()
    assert 'id="invite-form"' not in invites_page and f"/i/{world.invite.code}" not in invites_page
    keys_page = client.get(reverse("dashboard:api_keys", args=[mesh_id])).content.decode()
    assert 'id="key-create-form"' not in keys_page and 'id="key-revoke-form"' not in keys_page
    settings_page = client.get(reverse("dashboard:mesh_settings", args=[mesh_id])).content.decode()
    assert 'id="rename-form"' not in settings_page and 'id="archive-form"' not in settings_page
    assert "Set role" not in client.get(reverse("dashboard:mesh", args=[mesh_id])).content.decode()
    detail = client.get(reverse("dashboard:invite", args=[mesh_id, world.invite.id])).content.decode()
    assert world.invite.token not in detail and f"/i/{world.invite.code}" not in detail


def test_admins_get_change_forms_but_not_archive(client, world):
    client.force_login(world.users["admin"])
    settings_page = client.get(reverse("dashboard:mesh_settings", args=[world.mesh.id])).content.decode()
    assert 'id="rename-form"' in settings_page and 'id="archive-form"' not in settings_page


def test_invite_of_another_mesh_is_404(owner_client, world, make_user):
    from meshes import selectors, services

    other_owner = make_user()
    other = services.mesh_create(owner=other_owner, name="Other")
    foreign = services.invite_create(actor=selectors.actor_for_user(mesh_id=other.id, user=other_owner))
    url = reverse("dashboard:invite", args=[world.mesh.id, foreign.id])
    assert owner_client.get(url).status_code == 404
    response = owner_client.post(reverse("dashboard:invite_revoke", args=[world.mesh.id, foreign.id]))
    assert response.status_code == 404
    foreign.refresh_from_db()
    assert foreign.revoked_at is None


def test_archived_mesh_refuses_changes_with_a_message(owner_client, world):
    Mesh.objects.filter(pk=world.mesh.pk).update(archived_at=timezone.now())
    response = owner_client.post(
        reverse("dashboard:invite_create", args=[world.mesh.id]),
        {"role": "member", "max_uses": 1, "expires_in_days": 1},
    )
    assert response.status_code == 400
    assert "this mesh is archived" in response.content.decode()
