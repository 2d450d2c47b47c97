"""The moderation tab: an owner or admin kicks a live session (closed 4001 on the broker), bans and unbans a
member, and sets what each sender may do to a member; plain members get the 403 page."""

from __future__ import annotations

import pytest
from django.test import AsyncClient
from django.urls import reverse

from meshes.models import AuditEvent, Member, Role
from tests.support.identities import new_identity
from tests.support.sockets import db, open_socket, shutdown_broker


@pytest.mark.django_db(transaction=True)
async def test_kick_from_the_dashboard_closes_the_session_on_the_broker(world):
    bob = await db(new_identity)(world.mesh, "bob")
    sock = await open_socket(bob)
    try:
        client = AsyncClient()
        await db(client.force_login)(world.users["admin"])
        response = await client.get(reverse("dashboard:moderation", args=[world.mesh.id]))
        page = response.content.decode()
        assert response.status_code == 200, page[:300]
        presence_id = page.split('id="session-', 1)[1].split('"', 1)[0]
        response = await client.post(reverse("dashboard:session_close", args=[world.mesh.id, presence_id]), {"how": "kick"})
        assert response.status_code == 302
        assert await sock.expect_close() == (4001, "kicked")
        assert await db(AuditEvent.objects.filter(event_type="sessions_kicked").exists)()
    finally:
        await sock.close()
        await shutdown_broker()


@pytest.mark.django_db
def test_ban_and_unban_from_the_dashboard(client, world):
    bob = new_identity(world.mesh, "bob")
    client.force_login(world.users["admin"])
    client.post(reverse("dashboard:member_ban", args=[world.mesh.id, bob.member.id]))
    bob.member.refresh_from_db()
    assert bob.member.revoked_at is not None and bob.member.banned_at is not None
    page = client.get(reverse("dashboard:moderation", args=[world.mesh.id])).content.decode()
    assert f'id="banned-{bob.member.id}"' in page
    client.post(reverse("dashboard:member_unban", args=[world.mesh.id, bob.member.id]))
    bob.member.refresh_from_db()
    assert bob.member.revoked_at is None and bob.member.banned_at is None
    owner = Member.objects.get(mesh=world.mesh, role=Role.OWNER)
    response = client.post(reverse("dashboard:member_ban", args=[world.mesh.id, owner.id]), follow=True)
    assert "the mesh owner cannot be banned" in response.content.decode()
    assert Member.objects.get(pk=owner.pk).revoked_at is None


@pytest.mark.django_db
def test_grants_are_set_per_sender_and_reset_to_the_defaults(client, world):
    alice, bob = new_identity(world.mesh, "alice"), new_identity(world.mesh, "bob")
    client.force_login(world.users["owner"])
    url = reverse("dashboard:member_grants", args=[world.mesh.id, bob.member.id])
    client.post(url, {"sender": alice.pubkey, "caps": ["read", "broadcast"]})
    assert Member.objects.get(pk=bob.member.pk).peer_grants == {alice.pubkey: ["read", "broadcast"]}
    page = client.get(reverse("dashboard:moderation", args=[world.mesh.id]) + f"?member={bob.member.id}").content.decode()
    row = page.split(f'id="grant-{alice.member.id}"', 1)[1].split("</tr>", 1)[0]
    assert 'value="broadcast" form=' in row and "custom" in row
    assert row.count("checked") == 2
    client.post(url, {"sender": alice.pubkey})  # nothing ticked: blocked
    assert Member.objects.get(pk=bob.member.pk).peer_grants == {alice.pubkey: []}
    client.post(url, {"sender": alice.pubkey, "reset": "1"})
    assert Member.objects.get(pk=bob.member.pk).peer_grants == {}
    bad = client.post(url, {"sender": "not-a-key", "caps": ["dm"]}, follow=True)
    assert "64-hex" in bad.content.decode()


@pytest.mark.django_db
def test_plain_members_cannot_moderate(client, world):
    bob = new_identity(world.mesh, "bob")
    client.force_login(world.users["member"])
    assert client.get(reverse("dashboard:moderation", args=[world.mesh.id])).status_code == 403
    assert client.post(reverse("dashboard:member_ban", args=[world.mesh.id, bob.member.id])).status_code == 403
    assert Member.objects.get(pk=bob.member.pk).revoked_at is None
    client.force_login(world.users["outsider"])
    assert client.get(reverse("dashboard:moderation", args=[world.mesh.id])).status_code == 404
