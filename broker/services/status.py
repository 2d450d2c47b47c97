"""The status engine (protocol.md §4.3, §4.10): manual `set_status` and the Claude Code hook, ranked by source
(hook > manual > jsonl); a hook status for a connection not yet open waits briefly as a pending row.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from broker import conf
from broker.models import PendingHookStatus, Presence, Status, StatusSource
from broker.services.liveness import live_presences
from protocol.vocabulary import STATUSES

STATUS_RANK = {StatusSource.HOOK: 3, StatusSource.MANUAL: 2, StatusSource.JSONL: 1}


def check_status(value: Any) -> str:
    if not isinstance(value, str) or value not in STATUSES:
        raise ValueError("status must be idle, working or dnd")
    return value


def _apply_status(presence: Presence, status: str, source: str, now: datetime) -> list[str]:
    if status != presence.status:
        presence.status, presence.status_source, presence.status_updated_at = status, source, now
    elif STATUS_RANK[source] >= STATUS_RANK[presence.status_source]:
        presence.status_source, presence.status_updated_at = source, now
    elif presence.status_updated_at >= now - timedelta(seconds=conf.HOOK_FRESH_WINDOW_SECONDS):
        presence.status_updated_at = now
    else:
        presence.status_source, presence.status_updated_at = source, now
    return ["status", "status_source", "status_updated_at"]


@transaction.atomic
def presence_set_status(*, presence_id: str, status: str, source: str) -> Presence | None:
    presence = Presence.objects.select_for_update().filter(pk=presence_id).first()
    if presence is None:
        return None
    presence.save(update_fields=_apply_status(presence, status, source, timezone.now()))
    return presence


@dataclass(frozen=True)
class HookOutcome:
    body: dict[str, Any]
    presence: Presence | None = None  # set when a drain should follow


@transaction.atomic
def hook_set_status(*, cwd: str, status: str, pid: int | None) -> HookOutcome:
    now = timezone.now()
    candidates = live_presences(now=now).filter(cwd=cwd).select_for_update().order_by("-connected_at")
    presence = candidates.filter(pid=pid).first() if pid is not None else None
    presence = presence or candidates.first()
    if presence is None:
        PendingHookStatus.objects.filter(created_at__lt=now - timedelta(seconds=conf.PENDING_HOOK_TTL_SECONDS)).delete()
        PendingHookStatus.objects.create(pid=pid or 0, cwd=cwd, status=status)
        return HookOutcome({"ok": True, "pending": True})
    if presence.status == Status.DND:
        return HookOutcome({"ok": True, "presence_id": presence.id})
    presence.save(update_fields=_apply_status(presence, status, StatusSource.HOOK, now))
    return HookOutcome({"ok": True, "presence_id": presence.id}, presence=presence)


def pending_hook_status_take(*, pid: int, cwd: str, now: datetime) -> str | None:
    """A hook status posted just before its connection said hello: taken once, by that connection."""
    pending = (
        PendingHookStatus.objects.filter(
            pid=pid, cwd=cwd, created_at__gte=now - timedelta(seconds=conf.PENDING_HOOK_TTL_SECONDS)
        )
        .order_by("-created_at")
        .first()
    )
    if pending is None:
        return None
    pending.delete()
    return pending.status
