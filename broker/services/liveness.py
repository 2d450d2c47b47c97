"""Who is live and what their status counts as: the reads that routing, drains and presence all start from."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.utils import timezone

from broker import conf
from broker.models import BrokerWorker, Presence, Status, StatusSource


def lease_cutoff(now: datetime) -> datetime:
    """Live = not disconnected and last pinged after this (a dead worker's rows drop out after the lease)."""
    return now - timedelta(seconds=conf.lease_seconds())


def beat_cutoff(now: datetime) -> datetime:
    """A worker that last beat before this is dead: its presences are ghosts until retired, never routed to."""
    return now - timedelta(seconds=conf.worker_dead_seconds())


def live_presences(*, now: datetime | None = None):
    return Presence.objects.filter(disconnected_at=None, last_ping_at__gte=lease_cutoff(now or timezone.now()))


def dead_worker_ids(*, now: datetime | None = None) -> frozenset[str]:
    return frozenset(
        BrokerWorker.objects.filter(beat_at__lt=beat_cutoff(now or timezone.now())).values_list("worker_id", flat=True)
    )


def effective_status(*, status: str, source: str, updated_at: datetime, now: datetime | None = None) -> str:
    """dnd sticks; a fresh hook status counts; anything else is idle (no transcript inference on a server)."""
    now = now or timezone.now()
    if status == Status.DND:
        return Status.DND
    if source == StatusSource.HOOK and updated_at >= now - timedelta(seconds=conf.HOOK_FRESH_WINDOW_SECONDS):
        return status
    return Status.IDLE
