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
    badge = '<span class="badge">mesh_created</span>'
    assert badge in second and badge not in first



@pytest.fixture
def busy_mesh(mesh, owner_actor, make_user):
    from tests.dashboard.conftest import add_member

    admin = add_member(mesh=mesh, owner_actor=owner_actor, user=make_user(), role="admin")
    services.mesh_rename(actor=owner_actor, name="Renamed Once")
    invite = services.invite_create(actor=owner_actor, role="member", max_uses=3, expires_in_days=2)
    return {"admin": admin, "invite": invite}


def test_filters_by_event_type_and_actor(owner_client, mesh, owner_actor, busy_mesh):
    url = reverse("dashboard:audit", args=[mesh.id])
    renames = owner_client.get(url, {"type": "mesh_renamed"}).content.decode()
    assert '<span class="badge">mesh_renamed</span>' in renames
    assert '<span class="badge">invite_created</span>' not in renames
    by_admin = owner_client.get(url, {"actor": busy_mesh["admin"].id}).content.decode()
    assert '<span class="badge">member_joined</span>' in by_admin and '<span class="badge">mesh_renamed</span>' not in by_admin
    nobody = owner_client.get(url, {"type": "no_such_event"}).content.decode()
    assert "match these filters" in nobody


def test_values_are_readable_and_times_say_their_zone(owner_client, mesh, busy_mesh):
    page = owner_client.get(reverse("dashboard:audit", args=[mesh.id]), {"type": "invite_created"}).content.decode()
    invite = busy_mesh["invite"]
    assert f"invite {invite.code} ({invite.id[:8]})" in page  # not a bare id
    assert invite.expires_at.strftime("%Y-%m-%d") in page and "UTC" in page
    assert str(int(invite.expires_at.timestamp())) not in page  # not an epoch
    assert "data-local" in page  # the browser adds the reader's own time zone


def test_export_csv_and_json_with_the_filters(owner_client, mesh, busy_mesh):
    import csv
    import io
    import json

    response = owner_client.get(reverse("dashboard:audit_export_csv", args=[mesh.id]), {"type": "mesh_renamed"})
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert [row["eventType"] for row in rows] == ["mesh_renamed"]
    assert "Renamed Once" in rows[0]["details"] and rows[0]["position"] and len(rows[0]["hash"]) == 64
    document = json.loads(owner_client.get(reverse("dashboard:audit_export_json", args=[mesh.id])).content)
    assert document["chainVerified"] is True
    assert [event["position"] for event in document["events"]] == sorted(
        (event["position"] for event in document["events"]), reverse=True)
    assert {"mesh_created", "mesh_renamed", "invite_created", "member_joined"} <= {e["eventType"] for e in document["events"]}


def test_exports_are_for_managers_only(client, world):
    client.force_login(world.users["member"])
    assert client.get(reverse("dashboard:audit_export_csv", args=[world.mesh.id])).status_code == 403
    client.force_login(world.users["outsider"])
    assert client.get(reverse("dashboard:audit_export_json", args=[world.mesh.id])).status_code == 404
