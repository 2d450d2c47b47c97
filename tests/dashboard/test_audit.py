"""The audit page says whether the mesh's hash chain verifies, and where it breaks."""

from __future__ import annotations

import re

import pytest
from django.test import override_settings
from django.urls import reverse

from meshes import services
from meshes.models import AuditEvent

pytestmark = pytest.mark.django_db


def test_verified_banner_then_broken_after_tampering(owner_client, mesh, owner_actor):
    services.mesh_rename(actor=owner_actor, name="Renamed")
    services.api_key_create(actor=owner_actor, label="bot", capabilities=["read"])
    url = reverse("dashboard:audit", args=[mesh.id])
    page = owner_client.get(url).content.decode()
    assert "Chain verified (3 events)" in page
    assert "mesh_renamed" in page and "api_key_created" in page

    second = AuditEvent.objects.filter(mesh=mesh).order_by("id")[1]
    AuditEvent.objects.filter(pk=second.pk).update(payload={**second.payload, "to": "Something else"})
    page = owner_client.get(url).content.decode()
    assert "Chain broken at event 2" in page
    assert re.search(r'<tr class="row-broken">\s*<td[^>]*>2</td>', page)  # the row is numbered and marked
    assert "Chain verified" not in page


@override_settings(AUDIT_PAGE_SIZE=2)
def test_audit_is_paginated(owner_client, mesh, owner_actor):
    for name in ("One", "Two", "Three"):
        services.mesh_rename(actor=owner_actor, name=name)
    url = reverse("dashboard:audit", args=[mesh.id])
    first = owner_client.get(url).content.decode()
    assert "page 1 of 2" in first and "?page=2" in first
    second = owner_client.get(url, {"page": 2}).content.decode()
    assert "mesh_created" in second and "mesh_created" not in first
