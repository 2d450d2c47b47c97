"""Small things a new team trips over on the dashboard: member counts, the invite form's errors and limits,
reloading a form's POST target, the sign-in wording, the favicon."""

from __future__ import annotations

import pytest
from django.urls import reverse

from meshes import selectors, services
from tests.dashboard.conftest import add_member

pytestmark = pytest.mark.django_db


def test_a_member_sees_the_true_member_count(client, mesh, owner_actor, make_user):
    member = make_user()
    for _ in range(3):
        add_member(mesh=mesh, owner_actor=owner_actor, user=make_user(), role="member")
    add_member(mesh=mesh, owner_actor=owner_actor, user=member, role="member")
    counted = {m.id: m.member_count for m in selectors.meshes_for_user(user=member)}
    assert counted == {mesh.id: 5}  # owner + 4, not just the viewer's own row
    client.force_login(member)
    assert "5 members" in client.get(reverse("dashboard:mesh_list")).content.decode()


def test_the_invite_form_shows_every_bad_field_at_its_input_with_limits(owner_client, mesh):
    page = owner_client.get(reverse("dashboard:invites", args=[mesh.id])).content.decode()
    assert 'name="max_uses"' in page and 'min="1"' in page and 'max="1000"' in page and 'max="365"' in page
    response = owner_client.post(reverse("dashboard:invite_create", args=[mesh.id]),
                                 {"role": "member", "max_uses": 0, "expires_in_days": 9999})
    page = response.content.decode()
    assert response.status_code == 400
    assert "max uses must be between 1 and 1000" in page and "expiry (days) must be between 1 and 365" in page


@pytest.mark.parametrize(("name", "back"), [("invite_create", "invites"), ("api_key_create", "api_keys"),
                                            ("mesh_rename", "mesh_settings"), ("mesh_archive", "mesh_settings")])
def test_reloading_a_forms_target_goes_back_to_its_page(owner_client, mesh, name, back):
    response = owner_client.get(reverse(f"dashboard:{name}", args=[mesh.id]))
    assert response.status_code == 302 and response.url == reverse(f"dashboard:{back}", args=[mesh.id])


def test_sign_in_and_sign_up_speak_our_words(client):
    login = client.get(reverse("account_login")).content.decode()
    assert "Sign in to claudemesh" in login and "then please" not in login
    signup = client.get(reverse("account_signup")).content.decode()
    assert "Create your claudemesh account" in signup and "Then please" not in signup


def test_there_is_a_favicon(client):
    page = client.get(reverse("account_login")).content.decode()
    assert 'rel="icon"' in page and "favicon.svg" in page
    response = client.get("/favicon.ico")
    assert response.status_code == 301 and response.url.endswith("favicon.svg")


def test_an_invite_code_is_marked_unbreakable(owner_client, mesh, owner_actor):
    services.invite_create(actor=owner_actor)
    page = owner_client.get(reverse("dashboard:invites", args=[mesh.id])).content.decode()
    assert '<td class="mono code">' in page
