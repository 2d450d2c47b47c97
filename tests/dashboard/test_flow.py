"""The whole path a new user walks: sign up, create a mesh, invite, mint an API key, revoke it by prefix."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from meshes.models import ApiKey, Invite, Mesh

pytestmark = pytest.mark.django_db


def test_sign_up_to_revoked_key(client, settings):
    settings.ACCOUNT_EMAIL_VERIFICATION = "none"
    response = client.post(
        reverse("account_signup"),
        {"email": "new@example.test", "password1": "a long passphrase 42", "password2": "a long passphrase 42"},
    )
    assert response.status_code == 302
    assert client.get(reverse("dashboard:home")).status_code == 200

    response = client.post(reverse("dashboard:mesh_create"), {"name": "Team Alpha"})
    mesh = Mesh.objects.get(name="Team Alpha")
    assert response.url == reverse("dashboard:mesh", args=[mesh.id])
    page = client.get(response.url).content.decode()
    assert "Team Alpha" in page and "new@example.test" in page

    response = client.post(
        reverse("dashboard:invite_create", args=[mesh.id]), {"role": "member", "max_uses": 5, "expires_in_days": 3}
    )
    invite = Invite.objects.get(mesh=mesh)
    assert response.url == reverse("dashboard:invite", args=[mesh.id, invite.id])
    page = client.get(response.url).content.decode()
    assert f"/i/{invite.code}" in page
    assert f"claudemesh join http://testserver/i/{invite.code}" in page
    assert f"ic://join/{invite.token}" in page
    assert "<svg" in page  # the QR code, rendered server-side
    invites_page = client.get(reverse("dashboard:invites", args=[mesh.id])).content.decode()
    assert f'data-copy-text="http://testserver/i/{invite.code}"' in invites_page

    response = client.post(
        reverse("dashboard:api_key_create", args=[mesh.id]),
        {"label": "ci-bot", "capabilities": ["send", "read"], "expires_in_days": ""},
    )
    created_url = reverse("dashboard:api_key_created", args=[mesh.id])
    assert response.url == created_url
    first = client.get(created_url)
    secret = re.search(r"cm_[A-Za-z0-9_-]{43}", first.content.decode()).group(0)
    key = ApiKey.objects.get(mesh=mesh)
    assert key.secret_prefix == secret[:11]
    assert "no-store" in first["Cache-Control"]
    assert secret not in client.get(created_url).content.decode()  # shown exactly once
    for name in ("api_keys", "mesh", "audit", "invites", "mesh_settings"):
        assert secret not in client.get(reverse(f"dashboard:{name}", args=[mesh.id])).content.decode()
    keys_page = client.get(reverse("dashboard:api_keys", args=[mesh.id])).content.decode()
    assert f"{key.secret_prefix}…" in keys_page

    response = client.post(reverse("dashboard:api_key_revoke", args=[mesh.id]), {"key_ref": key.id[:8]})
    assert response.status_code == 302
    key.refresh_from_db()
    assert key.revoked_at is not None
    page = client.get(response.url).content.decode()
    assert f"Key {key.id[:8]} revoked" in page
    assert secret not in page


def test_landing_page_signed_out(client):
    page = client.get(reverse("dashboard:home")).content.decode()
    assert "claudemesh" in page and reverse("account_login") in page and reverse("account_signup") in page


def test_home_lists_my_meshes_only(owner_client, mesh, make_user):
    from meshes import services

    services.mesh_create(owner=make_user(), name="Someone Else's")
    page = owner_client.get(reverse("dashboard:home")).content.decode()
    assert "Test Mesh" in page and "Someone Else" not in page


def test_allauth_pages_use_the_dashboard_frame(client):
    for name in ("account_login", "account_signup", "account_reset_password"):
        page = client.get(reverse(name)).content.decode()
        assert "claudemesh.css" in page and "auth-card" in page, name


def test_account_pages_for_a_signed_in_user(owner_client):
    for name in ("account_change_password", "account_email", "account_logout"):
        response = owner_client.get(reverse(name))
        assert response.status_code == 200, name
        assert "claudemesh.css" in response.content.decode(), name


def test_sign_out_from_the_top_bar(owner_client):
    page = owner_client.get(reverse("dashboard:home")).content.decode()
    assert f'action="{reverse("account_logout")}"' in page
    owner_client.post(reverse("account_logout"))
    assert "Create an account" in owner_client.get(reverse("dashboard:home")).content.decode()


def test_password_reset_sends_mail(client, owner, mailoutbox):
    response = client.post(reverse("account_reset_password"), {"email": owner.email})
    assert response.status_code == 302
    assert len(mailoutbox) == 1 and "/accounts/password/reset/key/" in mailoutbox[0].body


def test_an_unopened_secret_does_not_linger_in_the_session(owner_client, mesh):
    owner_client.post(reverse("dashboard:api_key_create", args=[mesh.id]), {"label": "bot", "capabilities": ["read"]})
    owner_client.get(reverse("dashboard:api_keys", args=[mesh.id]))  # went elsewhere instead of the secret page
    page = owner_client.get(reverse("dashboard:api_key_created", args=[mesh.id])).content.decode()
    assert "Nothing to show" in page and re.search(r"cm_[A-Za-z0-9_-]{43}", page) is None


def test_sign_up_with_mandatory_verification(client, settings, mailoutbox):
    settings.ACCOUNT_EMAIL_VERIFICATION = "mandatory"
    response = client.post(
        reverse("account_signup"),
        {"email": "verify@example.test", "password1": "a long passphrase 42", "password2": "a long passphrase 42"},
        follow=True,
    )
    page = response.content.decode()
    assert response.status_code == 200 and "auth-card" in page and "claudemesh.css" in page
    assert len(mailoutbox) == 1 and "verify@example.test" in mailoutbox[0].to
    assert client.get(reverse("dashboard:mesh_list")).status_code == 302  # not signed in until verified
