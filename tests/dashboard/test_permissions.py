"""Who may do what from the dashboard: outsiders see nothing (404), members see but cannot change (403),
admins manage everything but archiving, the owner does everything."""

from __future__ import annotations

import pytest
from django.urls import reverse
from django.utils import timezone

from meshes.models import ApiKey, Invite, Member, Mesh, Role
from meshes.selectors import actor_for_user, invites_for_manager

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
        "rename member": ("post", reverse("dashboard:member_rename", args=[mesh_id, world.target.id]), {"name": "Zed"}),
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
        "rename member": Member.objects.get(pk=world.target.pk).display_name == "Zed",
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
    "rename member",
    "archive",
)


@pytest.mark.parametrize("standing", ("admin", "member"))
def test_a_member_renames_itself_and_links_its_own_cli(client, world, standing):
    """Given any member signed in, they may rename themselves (a lasting name peers address) and get a personal
    CLI link; the link is theirs alone and is not listed among the mesh's invites."""
    user = world.users[standing]
    me = Member.objects.get(mesh=world.mesh, user=user, revoked_at=None)
    client.force_login(user)
    response = client.post(reverse("dashboard:member_rename", args=[world.mesh.id, me.id]), {"name": "New Me"})
    assert response.status_code == 302
    assert Member.objects.get(pk=me.pk).display_name == "New Me"
    page = client.post(reverse("dashboard:cli_link", args=[world.mesh.id]))
    assert page.status_code == 200
    link = Invite.objects.get(for_member=me)
    assert f"/i/{link.code}" in page.content.decode()
    assert link.max_uses == 1
    owner_actor = actor_for_user(mesh_id=world.mesh.id, user=world.users["owner"])
    assert link not in list(invites_for_manager(actor=owner_actor))


@pytest.mark.parametrize("standing", (*STANDINGS, "anonymous"))
@pytest.mark.parametrize("action", ACTIONS)
def test_permission_matrix(client, world, standing, action):
    method, url, data = _request(world, action)
    if standing == "anonymous":
        response = getattr(client, method)(url, data) if data is not None else client.get(url)
        assert response.status_code == 302 and response.url.startswith(reverse("account_login"))
        assert action == "view mesh" or _done(world, action) is False
        return
    client.force_login(world.users[standing])
    response = getattr(client, method)(url, data) if data is not None else client.get(url)
    expected = _expected(standing, action)
    assert response.status_code == expected, response.content.decode()[:2000]
    if action != "view mesh":
        assert _done(world, action) is (expected == 302)
    if expected == 403:
        page = response.content.decode()
        assert "Not allowed" in page and "only the mesh owner" in page.lower()


# Pages by who may read them. Members see the mesh and who is online (what list_peers shows them anyway); the
# invites (their codes are the join capability), API keys, audit log and settings are for owners and admins.
MEMBER_PAGES = ("mesh", "mesh_live", "mesh_live_json")
MANAGER_PAGES = ("invites", "invite", "api_keys", "api_key_created", "audit", "mesh_settings")


def _page_url(world, page: str) -> str:
    args = [world.mesh.id, world.invite.id] if page == "invite" else [world.mesh.id]
    return reverse(f"dashboard:{page}", args=args)


@pytest.mark.parametrize("standing", (*STANDINGS, "anonymous"))
@pytest.mark.parametrize("page", MEMBER_PAGES + MANAGER_PAGES)
def test_page_matrix(client, world, standing, page):
    if standing != "anonymous":
        client.force_login(world.users[standing])
    response = client.get(_page_url(world, page))
    if standing == "anonymous":
        assert response.status_code == 302 and response.url.startswith(reverse("account_login"))
        return
    expected = {"outsider": 404, "member": 200 if page in MEMBER_PAGES else 403}.get(standing, 200)
    assert response.status_code == expected
    body = response.content.decode()
    if standing in ("member", "outsider"):  # nothing of an invite or a key leaks onto what they may see
        for secret in (world.invite.code, world.invite.token, world.api_key.secret_prefix):
            assert secret not in body, (page, secret)


def test_signed_out_visitors_are_sent_to_sign_in(client, world):
    response = client.get(reverse("dashboard:mesh", args=[world.mesh.id]))
    assert response.status_code == 302 and response.url.startswith(reverse("account_login"))


def test_unknown_mesh_is_404(owner_client):
    assert owner_client.get(reverse("dashboard:mesh", args=["nosuchmesh"])).status_code == 404


def test_members_get_no_manager_tabs_and_no_change_forms(client, world):
    client.force_login(world.users["member"])
    page = client.get(reverse("dashboard:mesh", args=[world.mesh.id])).content.decode()
    assert "Set role" not in page and "Invite people" not in page
    for name in ("invites", "api_keys", "audit", "mesh_settings"):
        assert reverse(f"dashboard:{name}", args=[world.mesh.id]) not in page, name


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
