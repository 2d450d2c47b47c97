"""Is the mesh alive, and is anyone's mail piling up? Counts from the metadata the broker keeps anyway (who sent,
to whom, when, delivered or not), never content: per member, messages sent and received in the last day and
what waits for them (how many, since when); per mesh, messages per hour over the last day, drawn as an SVG."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import Count, Min
from django.db.models.functions import TruncHour
from django.utils import timezone
from django.utils.html import escape

from broker.models import Delivery, DeliveryState, Message
from meshes.actors import Actor
from meshes.models import Member, Mesh

WINDOW = timedelta(hours=24)


@dataclass(frozen=True)
class MemberTraffic:
    member: Member
    sent: int
    received: int
    queued: int
    oldest_queued_at: datetime | None


@dataclass(frozen=True)
class MeshTraffic:
    members: list[MemberTraffic]
    hourly: list[tuple[datetime, int]]  # the last 24 whole hours, oldest first, this hour last
    since: datetime

    @property
    def total(self) -> int:
        return sum(count for _, count in self.hourly)


def mesh_traffic_for_manager(*, actor: Actor) -> MeshTraffic:
    """Who talks how much is for the mesh's owner and admins (as its invites and audit log are)."""
    actor.require_manager()
    return mesh_traffic(mesh=actor.mesh)


def mesh_traffic(*, mesh: Mesh, now: datetime | None = None) -> MeshTraffic:
    now = now or timezone.now()
    since = now - WINDOW
    messages = Message.objects.filter(mesh=mesh, created_at__gte=since)
    sent = dict(messages.values("sender_member_id").annotate(n=Count("id")).values_list("sender_member_id", "n"))
    deliveries = Delivery.objects.filter(message__mesh_id=mesh.id)
    received = dict(
        deliveries.filter(state=DeliveryState.DELIVERED, delivered_at__gte=since)
        .values("recipient_member_id").annotate(n=Count("id")).values_list("recipient_member_id", "n")
    )
    waiting = {
        row["recipient_member_id"]: row
        for row in deliveries.filter(state__lt=DeliveryState.DELIVERED)
        .values("recipient_member_id").annotate(n=Count("id"), oldest=Min("message__created_at"))
    }
    members = [
        MemberTraffic(
            member=member,
            sent=sent.get(member.id, 0),
            received=received.get(member.id, 0),
            queued=waiting.get(member.id, {}).get("n", 0),
            oldest_queued_at=waiting.get(member.id, {}).get("oldest"),
        )
        for member in Member.objects.filter(mesh=mesh, revoked_at=None).order_by("joined_at")
    ]
    by_hour = dict(messages.annotate(hour=TruncHour("created_at")).values("hour").annotate(n=Count("id")).values_list("hour", "n"))
    this_hour = now.replace(minute=0, second=0, microsecond=0)
    hours = [this_hour - timedelta(hours=offset) for offset in range(23, -1, -1)]
    return MeshTraffic(members=members, hourly=[(hour, by_hour.get(hour, 0)) for hour in hours], since=since)


def hourly_chart_svg(hourly: list[tuple[datetime, int]], *, width: int = 480, height: int = 120) -> str:
    """Bars for messages per hour, drawn on the server: no script, no charting library, readable without colour."""
    peak = max((count for _, count in hourly), default=0)
    left, bottom, top = 28, 18, 8
    plot_w, plot_h = width - left - 4, height - bottom - top
    bar_w = plot_w / max(len(hourly), 1)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" role="img" class="chart" '
             f'aria-label="Messages per hour over the last 24 hours, at most {peak} in one hour">',
             f'<text x="{left - 4}" y="{top + 8}" text-anchor="end" class="chart-axis">{peak}</text>',
             f'<text x="{left - 4}" y="{top + plot_h}" text-anchor="end" class="chart-axis">0</text>',
             f'<line x1="{left}" y1="{top + plot_h}" x2="{width - 4}" y2="{top + plot_h}" class="chart-base"/>']
    for index, (hour, count) in enumerate(hourly):
        bar_h = 0 if peak == 0 else round(plot_h * count / peak, 1)
        x = round(left + index * bar_w + 1, 1)
        label = escape(f"{hour:%H}:00 UTC: {count} message{'s' if count != 1 else ''}")
        parts.append(f'<rect x="{x}" y="{round(top + plot_h - bar_h, 1)}" width="{round(bar_w - 2, 1)}" '
                     f'height="{bar_h}" class="chart-bar"><title>{label}</title></rect>')
        if index % 6 == 0 or index == len(hourly) - 1:
            parts.append(f'<text x="{round(x + bar_w / 2, 1)}" y="{height - 4}" text-anchor="middle" '
                         f'class="chart-axis">{hour:%H}h</text>')
    parts.append("</svg>")
    return "".join(parts)
