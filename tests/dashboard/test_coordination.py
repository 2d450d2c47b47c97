"""The coordination tab: tasks by status with assignee and age, scheduled items with their next fire time, state
keys with writer and time, the memory count; never a sealed value, and nothing for outsiders."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from meshes import selectors
from meshes.models import Memory, ScheduledMessage, StateEntry, Task

pytestmark = pytest.mark.django_db
SEALED = {"nonce": "bm9uY2U=", "ciphertext": "Q01TMXNlYWxlZC1ibG9i"}


def test_the_tab_shows_metadata_of_every_family_and_never_a_sealed_blob(client, world):
    member = selectors.actor_for_user(mesh_id=world.mesh.id, user=world.users["member"]).member
    Task.objects.create(mesh=world.mesh, sealed=SEALED, assignee="bob", priority="high", created_by_name="alice")
    Task.objects.create(mesh=world.mesh, title="plain title", status="claimed", claimed_by_name="carol",
                        created_at=timezone.now() - timedelta(hours=3))
    StateEntry.objects.create(mesh=world.mesh, key="release", sealed=SEALED, version=4, updated_by_name="alice")
    Memory.objects.create(mesh=world.mesh, sealed=SEALED)
    Memory.objects.create(mesh=world.mesh, content="plain memory")
    Memory.objects.create(mesh=world.mesh, content="gone", forgotten_at=timezone.now())
    ScheduledMessage.objects.create(mesh=world.mesh, member=member, to="*", nonce="n", ciphertext="Q01TMXJlbWluZA==",
                                    cron="30 9 * * 1-5", time_zone="Europe/Berlin",
                                    deliver_at=timezone.now() + timedelta(hours=2))
    client.force_login(world.users["member"])
    page = client.get(reverse("dashboard:coordination", args=[world.mesh.id])).content.decode()
    assert "<strong>1</strong> open" in page and "<strong>1</strong> claimed" in page
    assert "<strong>2</strong> memories (1 encrypted)" in page and "<strong>1</strong> state keys" in page
    assert "bob" in page and "high" in page and "carol" in page and "3\xa0hours ago" in page
    assert "release" in page and ">4<" in page and "30 9 * * 1-5 · Europe/Berlin" in page
    assert "in 1\xa0hour" in page or "in 2\xa0hours" in page
    assert "Q01TMX" not in page and "plain title" not in page and "plain memory" not in page
    assert page.count('class="badge">plaintext') == 2  # the legend, and the plaintext task (memories: counted only)
    assert 'aria-current="page">Coordination' in page
    client.force_login(world.users["outsider"])
    assert client.get(reverse("dashboard:coordination", args=[world.mesh.id])).status_code == 404
