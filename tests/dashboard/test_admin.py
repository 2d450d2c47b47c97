"""The Django admin renders every meshes model for staff and never shows a secret."""

from __future__ import annotations

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.urls import reverse

from meshes.models import ApiKey, AuditEvent, Invite, Member, Memory, Mesh, ScheduledMessage, StateEntry, Task, Topic

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client, django_user_model):
    staff = django_user_model.objects.create_superuser(
        username="root@example.test", email="root@example.test", password="x"
    )
    client.force_login(staff)
    return client


def _secrets(world) -> list[str]:
    mesh, invite, key = world.mesh, world.invite, world.api_key
    return [
        mesh.owner_secret_key_sealed,
        mesh.root_key_sealed,
        mesh.owner_secret_hex(),
        mesh.root_key_b64url(),
        invite.token,
        invite.v1_payload().canonical(),
        invite.capability_v2,
        key.secret_hash,
        world.secret,
    ]


def _admin_urls(world) -> list[str]:
    objects = [
        world.mesh,
        world.target,
        world.invite,
        world.api_key,
        AuditEvent.objects.filter(mesh=world.mesh).first(),
        Topic.objects.get(mesh=world.mesh, name="general"),
    ]
    urls = [reverse("admin:index")]
    for obj in objects:
        opts = obj._meta
        urls.append(reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist"))
        urls.append(reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[obj.pk]))
    return urls


def test_admin_pages_render_without_secrets(admin_client, world):
    secrets = _secrets(world)
    for url in _admin_urls(world):
        response = admin_client.get(url)
        assert response.status_code == 200, url
        page = response.content.decode()
        for secret in secrets:
            assert secret not in page, (url, secret[:12])
    assert world.api_key.secret_prefix in admin_client.get(reverse("admin:meshes_apikey_changelist")).content.decode()


def test_admin_search_and_filters_render(admin_client, world):
    sealed = {"nonce": "bm9uY2U=", "ciphertext": "Q01TMXNlYWxlZA=="}
    Task.objects.create(mesh=world.mesh, sealed=sealed, assignee="bob")
    StateEntry.objects.create(mesh=world.mesh, key="release", sealed=sealed)
    Memory.objects.create(mesh=world.mesh, content="a plaintext memory")
    member = Member.objects.filter(mesh=world.mesh).first()
    ScheduledMessage.objects.create(mesh=world.mesh, member=member, to="*", message="plain", deliver_at=world.mesh.created_at)
    for name in ("task", "stateentry", "memory", "scheduledmessage"):
        page = admin_client.get(reverse(f"admin:meshes_{name}_changelist")).content.decode()
        assert "Q01TMX" not in page and "a plaintext memory" not in page and ">plain<" not in page, name
    checks = [
        ("admin:meshes_mesh_changelist", {"q": "Test", "archived": "no"}),
        ("admin:meshes_member_changelist", {"q": "example", "role__exact": "member", "revoked": "no"}),
        ("admin:meshes_invite_changelist", {"q": world.invite.code, "state": "active"}),
        ("admin:meshes_apikey_changelist", {"q": "ci", "revoked": "no"}),
        ("admin:meshes_auditevent_changelist", {"q": "invite_created"}),
        ("admin:meshes_topic_changelist", {"q": "general", "visibility__exact": "public", "archived": "no"}),
        ("admin:meshes_task_changelist", {"status__exact": "open"}),
        ("admin:meshes_stateentry_changelist", {"q": "release"}),
        ("admin:meshes_memory_changelist", {}),
        ("admin:meshes_scheduledmessage_changelist", {}),
    ]
    for name, params in checks:
        assert admin_client.get(reverse(name), params).status_code == 200, name


def test_nothing_can_be_added_edited_or_deleted(admin_client, world):
    for model in (Mesh, Member, Invite, ApiKey, AuditEvent, Topic, Task, StateEntry, Memory, ScheduledMessage):
        opts = model._meta
        assert admin_client.get(reverse(f"admin:{opts.app_label}_{opts.model_name}_add")).status_code == 403
    url = reverse("admin:meshes_mesh_change", args=[world.mesh.pk])
    assert admin_client.post(url, {"name": "Edited"}).status_code == 403
    assert admin_client.post(reverse("admin:meshes_apikey_delete", args=[world.api_key.pk])).status_code == 403


def _run_action(client, model, action, objects):
    opts = model._meta
    return client.post(
        reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist"),
        {"action": action, ACTION_CHECKBOX_NAME: [obj.pk for obj in objects]},
    )


def test_admin_actions_go_through_audited_services(admin_client, world):
    assert _run_action(admin_client, ApiKey, "revoke_keys", [world.api_key]).status_code == 302
    assert _run_action(admin_client, Invite, "revoke_invites", [world.invite]).status_code == 302
    assert _run_action(admin_client, Mesh, "archive_meshes", [world.mesh]).status_code == 302
    world.api_key.refresh_from_db()
    world.invite.refresh_from_db()
    world.mesh.refresh_from_db()
    assert world.api_key.revoked_at and world.invite.revoked_at and world.mesh.archived_at
    staff_events = AuditEvent.objects.filter(mesh=world.mesh, actor_display_name="staff root@example.test")
    assert sorted(staff_events.values_list("event_type", flat=True)) == [
        "api_key_revoked",
        "invite_revoked",
        "mesh_archived",
    ]
    assert all(event.payload["via"] == "admin" for event in staff_events)


def test_verify_chain_action(admin_client, world):
    response = _run_action(admin_client, Mesh, "verify_audit_chains", [world.mesh])
    assert response.status_code == 302
    page = admin_client.get(response.url).content.decode()
    assert "chain verified" in page
