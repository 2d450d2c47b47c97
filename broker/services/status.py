"""The status engine (protocol.md §4.3, §4.10): manual `set_status` and the Claude Code hook, ranked by source
(hook > manual > jsonl); a hook status for a connection not yet open waits briefly as a pending row.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from broker import conf
from broker.models import PendingHookStatus, Presence, Status, StatusSource
from broker.services.liveness import live_presences
from meshes.models import Member
from protocol.encoding import HEX128
from protocol.hooks import hook_signature_valid
from protocol.ids import is_id_fragment
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


@dataclass(frozen=True)
class HookCaller:
    """Who posted a hook: a member that signed it (its own sessions only), or an anonymous address (only unsigned
    sessions connected from that same address)."""

    ip: str
    member_id: str | None = None
    mesh_id: str | None = None


class HookRefused(Exception):
    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


def hook_caller(*, body: dict[str, Any], ip: str, now_ms: int) -> HookCaller:
    """An unsigned body is anonymous; a signed one must verify against a current member's key (docs/wire-extensions.md)."""
    if "signature" not in body:
        return HookCaller(ip=ip)
    mesh_id, member_id = body.get("meshId"), body.get("memberId")
    stamp, signature = body.get("timestamp"), body.get("signature")
    if not (isinstance(mesh_id, str) and is_id_fragment(mesh_id) and isinstance(member_id, str) and is_id_fragment(member_id)):
        raise HookRefused("malformed", "meshId and memberId must be ids")
    if isinstance(stamp, bool) or not isinstance(stamp, int) or abs(now_ms - stamp) > conf.HELLO_MAX_SKEW_MS:
        raise HookRefused("timestamp_skew", "timestamp must be within 60 s of the broker's clock (ms)")
    if not isinstance(signature, str) or not HEX128.fullmatch(signature):
        raise HookRefused("malformed", "signature must be 128 hex chars")
    pubkey = (
        Member.objects.filter(pk=member_id, mesh_id=mesh_id, revoked_at=None)
        .exclude(pubkey=None)
        .values_list("pubkey", flat=True)
        .first()
    )
    cwd, status = body.get("cwd"), body.get("status")
    if pubkey is None or not isinstance(cwd, str) or not isinstance(status, str) or not hook_signature_valid(
        mesh_id=mesh_id, member_id=member_id, pubkey=pubkey, cwd=cwd, status=status, timestamp=stamp, signature=signature
    ):
        raise HookRefused("bad_signature", "hook signature does not verify for that member")
    return HookCaller(ip=ip, member_id=member_id, mesh_id=mesh_id)


def hook_post(*, body: dict[str, Any], cwd: str, status: str, pid: int | None, ip: str) -> HookOutcome:
    """`POST /hook/set-status`: who asks (signed member, or an anonymous address), then the status for them."""
    caller = hook_caller(body=body, ip=ip, now_ms=int(time.time() * 1000))
    return hook_set_status(cwd=cwd, status=status, pid=pid, caller=caller)


@transaction.atomic
def hook_set_status(*, cwd: str, status: str, pid: int | None, caller: HookCaller) -> HookOutcome:
    now = timezone.now()
    candidates = live_presences(now=now).filter(cwd=cwd)
    if caller.member_id is not None:
        candidates = candidates.filter(mesh_id=caller.mesh_id, member_id=caller.member_id)
    else:  # [PY] an anonymous hook cannot reach a session that signs, nor one on another machine
        candidates = candidates.filter(signed_hooks=False, ip=caller.ip)
    candidates = candidates.select_for_update().order_by("-connected_at")
    presence = candidates.filter(pid=pid).first() if pid is not None else None
    presence = presence or candidates.first()
    if presence is None:
        PendingHookStatus.objects.filter(created_at__lt=now - timedelta(seconds=conf.PENDING_HOOK_TTL_SECONDS)).delete()
        PendingHookStatus.objects.create(pid=pid or 0, cwd=cwd, status=status, member_id=caller.member_id, ip=caller.ip)
        return HookOutcome({"ok": True, "pending": True})
    # Presence ids go only to the member whose session it is.
    answer = {"ok": True, "presence_id": presence.id} if caller.member_id is not None else {"ok": True}
    if presence.status == Status.DND:
        return HookOutcome(answer)
    presence.save(update_fields=_apply_status(presence, status, StatusSource.HOOK, now))
    return HookOutcome(answer, presence=presence)


def pending_hook_status_take(*, pid: int, cwd: str, now: datetime, member_id: str, ip: str, signed_hooks: bool) -> str | None:
    """A hook status posted just before its connection said hello: taken once, by that connection (one its caller
    could have reached: the same member, or for an unsigned session an anonymous hook from its address)."""
    callers = Q(member_id=member_id) if signed_hooks else Q(member_id=member_id) | Q(member_id=None, ip=ip)
    pending = (
        PendingHookStatus.objects.filter(
            callers, pid=pid, cwd=cwd, created_at__gte=now - timedelta(seconds=conf.PENDING_HOOK_TTL_SECONDS)
        )
        .order_by("-created_at")
        .first()
    )
    if pending is None:
        return None
    pending.delete()
    return pending.status
