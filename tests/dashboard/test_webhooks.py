"""The webhooks tab: an owner or admin creates a webhook (its HMAC secret shown once), copies its URL and revokes
it; plain members get the 403 page."""

from __future__ import annotations

import pytest
from django.urls import reverse

from meshes.models import Webhook

pytestmark = pytest.mark.django_db


def test_create_show_and_revoke_a_webhook(client, world):
    client.force_login(world.users["admin"])
    page = client.post(reverse("dashboard:webhook_create", args=[world.mesh.id]), {"name": "ci", "signed": "on"})
    html = page.content.decode()
    hook = Webhook.objects.get(mesh=world.mesh, name="ci")
    assert f"/hook/{world.mesh.id}/{hook.secret()}" in html and hook.signing_secret() in html
    listing = client.get(reverse("dashboard:webhooks", args=[world.mesh.id])).content.decode()
    assert 'id="webhook-ci"' in listing and hook.secret() in listing and hook.signing_secret() not in listing
    taken = client.post(reverse("dashboard:webhook_create", args=[world.mesh.id]), {"name": "ci"})
    assert taken.status_code == 409 and "already exists" in taken.content.decode()
    client.post(reverse("dashboard:webhook_delete", args=[world.mesh.id, "ci"]))
    hook.refresh_from_db()
    assert hook.deleted_at is not None
    assert 'id="webhook-ci"' not in client.get(reverse("dashboard:webhooks", args=[world.mesh.id])).content.decode()


def test_plain_members_cannot_see_or_create_webhooks(client, world):
    client.force_login(world.users["member"])
    assert client.get(reverse("dashboard:webhooks", args=[world.mesh.id])).status_code == 403
    assert client.post(reverse("dashboard:webhook_create", args=[world.mesh.id]), {"name": "x"}).status_code == 403
    assert not Webhook.objects.exists()
