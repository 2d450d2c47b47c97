"""The traffic tab: per member sent / received / waiting (and since when), messages per hour as a server-drawn
chart, from metadata only, for owners and admins."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from broker.models import Delivery, DeliveryState, Message
from broker.traffic import hourly_chart_svg, mesh_traffic
from meshes.models import Member

pytestmark = pytest.mark.django_db


def message(mesh, sender, recipient, *, ago: timedelta, delivered: bool, text: str = "c2VjcmV0") -> Message:
    created = timezone.now() - ago
    row = Message.objects.create(mesh=mesh, sender_member=sender, sender_pubkey="ab" * 32, target_spec=recipient.pubkey,
                                 nonce="n", ciphertext=text, created_at=created)
    Delivery.objects.create(message=row, recipient_member=recipient,
                            state=DeliveryState.DELIVERED if delivered else DeliveryState.PENDING,
                            delivered_at=created + timedelta(seconds=1) if delivered else None)
    return row


@pytest.fixture
def talk(mesh):
    alice = Member.objects.create(mesh=mesh, pubkey="a1" * 32, display_name="alice")
    bob = Member.objects.create(mesh=mesh, pubkey="b1" * 32, display_name="bob")
    for minutes in (5, 65, 70):
        message(mesh, alice, bob, ago=timedelta(minutes=minutes), delivered=True)
    message(mesh, bob, alice, ago=timedelta(hours=3), delivered=False)
    message(mesh, bob, alice, ago=timedelta(minutes=30), delivered=False)
    message(mesh, alice, bob, ago=timedelta(hours=30), delivered=True)  # outside the day
    return alice, bob


def test_counts_per_member_and_per_hour(mesh, talk):
    alice, bob = talk
    report = mesh_traffic(mesh=mesh)
    rows = {row.member.display_name: row for row in report.members}
    assert (rows["alice"].sent, rows["alice"].received, rows["alice"].queued) == (3, 0, 2)
    assert (rows["bob"].sent, rows["bob"].received, rows["bob"].queued) == (2, 3, 0)
    assert timezone.now() - rows["alice"].oldest_queued_at > timedelta(hours=2, minutes=59)
    assert len(report.hourly) == 24 and report.total == 5


def test_the_page_shows_it_without_content_for_managers_only(client, owner, mesh, talk, make_user):
    from meshes.selectors import actor_for_user
    from tests.dashboard.conftest import add_member

    client.force_login(owner)
    page = client.get(reverse("mesh_traffic", args=[mesh.id])).content.decode()
    assert "5 in the last 24 h" in page and "<svg" in page and "<rect" in page
    assert "c2VjcmV0" not in page  # metadata only
    assert 'id="traffic-' in page and "Waiting for them" in page
    member = make_user()
    add_member(mesh=mesh, owner_actor=actor_for_user(mesh_id=mesh.id, user=owner), user=member, role="member")
    client.force_login(member)
    assert client.get(reverse("mesh_traffic", args=[mesh.id])).status_code == 403


def test_the_chart_scales_bars_to_the_busiest_hour():
    now = timezone.now().replace(minute=0, second=0, microsecond=0)
    hours = [(now - timedelta(hours=23 - n), n % 5) for n in range(24)]
    svg = hourly_chart_svg(hours)
    assert svg.count("<rect") == 24 and "at most 4 in one hour" in svg
    assert "<script" not in svg
