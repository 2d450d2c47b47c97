"""The topics tab: metadata only (counts, times; never content), private topics hidden from outsiders, and
topic membership that managers change."""

from __future__ import annotations

import pytest
from django.urls import reverse

from meshes import selectors, services
from meshes.models import Topic, TopicMember, TopicMessage

pytestmark = pytest.mark.django_db


def post(topic: Topic, sender, text: str) -> None:
    TopicMessage.objects.create(id=f"m{TopicMessage.objects.count():031d}", topic=topic, sender_member=sender,
                                sender_pubkey="ab" * 32, nonce="n", ciphertext=text)


@pytest.fixture
def topics(world):
    owner_actor = selectors.actor_for_user(mesh_id=world.mesh.id, user=world.users["owner"])
    ops, _ = services.topic_create(actor=owner_actor, name="ops", description="on call")
    secret, _ = services.topic_create(actor=owner_actor, name="secret", visibility="private")
    general = Topic.objects.get(mesh=world.mesh, name="general")
    for n in range(3):
        post(ops, owner_actor.member, f"Q01TMWNpcGhlcnRleHQ{n}")
    return general, ops, secret


def test_the_list_shows_counts_and_last_activity_and_says_it_cannot_show_content(client, world, topics):
    general, ops, secret = topics
    client.force_login(world.users["member"])
    page = client.get(reverse("dashboard:topics", args=[world.mesh.id])).content.decode()
    assert "#general" in page and "#ops" in page and "on call" in page
    assert "#secret" not in page  # private, and this member is not in it
    rows = {row.topic.name: row for row in selectors_overview(world, "member")}
    assert (rows["ops"].member_count, rows["ops"].message_count) == (1, 3)
    assert rows["general"].member_count == 4  # owner, admin, member, target and rows["general"].last_activity is None
    assert "cannot read" in page and "Q01TMWNpcGhlcnRleHQ" not in page
    client.force_login(world.users["admin"])
    assert "#secret" in client.get(reverse("dashboard:topics", args=[world.mesh.id])).content.decode()
    client.force_login(world.users["member"])
    assert client.get(reverse("dashboard:topic", args=[world.mesh.id, secret.id])).status_code == 404


def selectors_overview(world, standing):
    from meshes.selectors_topics import topics_overview

    return topics_overview(actor=selectors.actor_for_user(mesh_id=world.mesh.id, user=world.users[standing]))


def test_a_manager_adds_and_removes_topic_members(client, world, topics):
    _, ops, _ = topics
    client.force_login(world.users["admin"])
    page = client.get(reverse("dashboard:topic", args=[world.mesh.id, ops.id])).content.decode()
    assert 'id="topic-add-form"' in page and world.target.display_name in page
    response = client.post(reverse("dashboard:topic_member_add", args=[world.mesh.id, ops.id]),
                           {"member_id": world.target.id, "role": "member"})
    assert response.status_code == 302
    assert TopicMember.objects.filter(topic=ops, member=world.target).exists()
    response = client.post(reverse("dashboard:topic_member_remove", args=[world.mesh.id, ops.id, world.target.id]))
    assert response.status_code == 302
    assert not TopicMember.objects.filter(topic=ops, member=world.target).exists()
    bad = client.post(reverse("dashboard:topic_member_add", args=[world.mesh.id, ops.id]), {"member_id": "nope"})
    assert bad.status_code == 404 and "no such member" in bad.content.decode()


def test_a_plain_member_cannot_change_who_is_in_a_topic(client, world, topics):
    _, ops, _ = topics
    client.force_login(world.users["member"])
    page = client.get(reverse("dashboard:topic", args=[world.mesh.id, ops.id])).content.decode()
    assert 'id="topic-add-form"' not in page
    response = client.post(reverse("dashboard:topic_member_add", args=[world.mesh.id, ops.id]),
                           {"member_id": world.target.id})
    assert response.status_code == 403
    assert not TopicMember.objects.filter(topic=ops, member=world.target).exists()
