"""Worker liveness: each worker beats every second; a worker whose beat stopped (kill -9, a frozen process) is
dead, and any live worker retires its presences within seconds, so its sessions stop being routed to and its
peers are told they left, instead of haunting the mesh for a whole lease."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from broker import conf
from broker.models import BrokerWorker, Presence
from broker.services.presence import ClosedPresence, presence_close

RETIRE_BATCH = 500


def worker_beat(*, worker_id: str) -> None:
    now = timezone.now()
    if not BrokerWorker.objects.filter(pk=worker_id).update(beat_at=now):
        BrokerWorker.objects.update_or_create(worker_id=worker_id, defaults={"beat_at": now})


def workers_retire_dead() -> list[ClosedPresence]:
    """Close the presences of every dead worker (each row closed once, by whoever gets it); a dead worker with no
    presences left is forgotten. Returns the closes to announce."""
    stale = timezone.now() - timedelta(seconds=conf.worker_dead_seconds())
    dead = list(BrokerWorker.objects.filter(beat_at__lt=stale).values_list("worker_id", flat=True))
    closed: list[ClosedPresence] = []
    for worker_id in dead:
        closed += worker_retire(worker_id=worker_id)
    return closed


def worker_retire(*, worker_id: str) -> list[ClosedPresence]:
    """This worker is gone (dead, or shutting down): close what it still holds, then forget it."""
    closed: list[ClosedPresence] = []
    while ids := list(
        Presence.objects.filter(worker_id=worker_id, disconnected_at=None).values_list("id", flat=True)[:RETIRE_BATCH]
    ):
        for presence_id in ids:
            result = presence_close(presence_id=presence_id)
            if result is not None and result.announce:
                closed.append(result)
    BrokerWorker.objects.filter(pk=worker_id).exclude(
        pk__in=Presence.objects.filter(worker_id=worker_id, disconnected_at=None).values("worker_id")
    ).delete()
    return closed
