"""The public pages invite links open: /i/<code> and /join/<token>."""

from __future__ import annotations

import pytest
from django.urls import reverse
from django.utils import timezone

from meshes.models import Invite, Member, Mesh

pytestmark = pytest.mark.django_db


@pytest.fixture
def invite(owner_actor):
    from meshes import services

    return services.invite_create(actor=owner_actor, role="admin", max_uses=2, expires_in_days=5)


def test_short_link_page_for_a_visitor(client, invite):
    page = client.get(f"/i/{invite.code}").content.decode()
    assert "Test Mesh" in page and "admin" in page
    # The inviter is named by display name (the e-mail's local part by default), never by e-mail address.
    assert ">owner<" in page or " owner" in page
    assert "owner@example.test" not in page
    assert f"claudemesh join http://testserver/i/{invite.code}" in page
    assert "2 of 2" in page
    assert "Sign in" in page and "Join this mesh" not in page
    assert invite.token not in page  # the root-key-bearing token stays off the public page


def test_join_page_shows_the_cli_command(client, invite):
    page = client.get(f"/join/{invite.token}").content.decode()
    assert "Test Mesh" in page
    assert f"claudemesh join http://testserver/join/{invite.token}" in page  # the address this page was opened at


def test_unknown_links_are_404(client):
    assert client.get("/i/NOPE2345").status_code == 404
    assert client.get("/join/not-a-token").status_code == 404


def test_signed_in_user_joins_with_the_invite_role(client, invite, make_user):
    user = make_user()
    client.force_login(user)
    assert "Join this mesh" in client.get(f"/i/{invite.code}").content.decode()
    response = client.post(reverse("dashboard:invite_accept", args=[invite.code]))
    assert response.status_code == 302 and response.url == reverse("dashboard:mesh", args=[invite.mesh_id])
    member = Member.objects.get(mesh=invite.mesh, user=user, revoked_at=None)
    assert member.role == "admin"
    page = client.get(f"/i/{invite.code}").content.decode()
    assert "already a member" in page
    invite.refresh_from_db()
    assert invite.used_count == 1


def test_dead_invites_explain_themselves(client, invite, make_user):
    client.force_login(make_user())
    Invite.objects.filter(pk=invite.pk).update(revoked_at=timezone.now())
    page = client.get(f"/i/{invite.code}").content.decode()
    assert "This invite was revoked" in page and "Join this mesh" not in page
    response = client.post(reverse("dashboard:invite_accept", args=[invite.code]))
    assert response.status_code == 410
    assert "Invite revoked" in response.content.decode()
    Invite.objects.filter(pk=invite.pk).update(revoked_at=None)
    Mesh.objects.filter(pk=invite.mesh_id).update(archived_at=timezone.now())
    assert "archived" in client.get(f"/i/{invite.code}").content.decode()


def test_accept_when_signed_out_goes_to_sign_in(client, invite):
    response = client.post(reverse("dashboard:invite_accept", args=[invite.code]))
    assert response.status_code == 302 and response.url.startswith(reverse("account_login"))


def test_landing_page_says_how_to_install_the_cli_from_this_server(client, invite):
    page = client.get(f"/i/{invite.code}").content.decode()
    assert "pipx install http://testserver/cli/claudemesh-" in page and "-py3-none-any.whl" in page


def test_a_personal_cli_link_says_whose_it_is_and_offers_no_dashboard_join(client, owner_actor):
    from meshes import services

    link = services.invite_create_cli_link(actor=owner_actor)
    page = client.get(f"/i/{link.code}").content.decode()
    assert "personal link" in page and "Join this mesh" not in page and "Sign in</a> or" not in page
