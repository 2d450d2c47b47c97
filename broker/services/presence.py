"""Presence lifecycle (protocol.md §2.4–2.9, §4): hello checks, open/close, the status engine and the
per-connection settings. Validate (`check_*`) then act (`do_*`-style services below); events are returned to the
caller, which publishes them only after the transaction committed.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from broker import conf, wire
from broker.models import PeerState, PendingHookStatus, Presence, Status, StatusSource
from meshes.audit import audit_append
from meshes.models import Member, Mesh
from meshes.text import storable
from protocol.encoding import HEX64, HEX128
from protocol.hello import hello_signature_valid
from protocol.ids import is_id_fragment

SESSION_PUBKEY = re.compile(r"^[0-9a-f]{64}$")
STATUS_RANK = {StatusSource.HOOK: 3, StatusSource.MANUAL: 2, StatusSource.JSONL: 1}
STATS_KEYS = ("messagesIn", "messagesOut", "toolCalls", "errors")
SELF_EDITABLE = {"displayName": True, "roleTag": True, "groups": True, "messageMode": True}


class HandshakeRejected(Exception):
    """One handshake failure: an `error` frame, then close with `close_code` / `reason`."""

    def __init__(self, code: str, message: str | None = None, *, close_code: int = 1008, reason: str | None = None):
        super().__init__(code)
        self.code = code
        self.message = message or f"hello rejected: {code}"
        self.close_code = close_code
        self.reason = reason or code


@dataclass(frozen=True)
class Hello:
    mesh_id: str
    member_id: str
    pubkey: str
    session_pubkey: str | None
    session_id: str
    pid: int
    cwd: str
    display_name: str | None
    hostname: str | None
    peer_type: str | None
    channel: str | None
    model: str | None
    groups: list[dict[str, str]]
    delivery_ack: bool


@dataclass(frozen=True)
class HelloLookup:
    live_count: int
    member: Member | None
    mesh: Mesh | None
    revoked: bool


@dataclass
class OpenedPresence:
    presence: Presence
    ack: dict[str, Any]
    join_event: dict[str, Any]
    replaced: list[tuple[str, str]] = field(default_factory=list)  # (presence id, node id)


@dataclass(frozen=True)
class ClosedPresence:
    presence_id: str
    mesh_id: str
    member_id: str
    was_live: bool
    left_event: dict[str, Any]


def _opt_str(value: Any, limit: int) -> str | None:
    return value[:limit] if isinstance(value, str) and value else None


def _clean_groups(value: Any) -> list[dict[str, str]]:
    groups: list[dict[str, str]] = []
    if not isinstance(value, list):
        return groups
    for item in value:
        if isinstance(item, dict) and isinstance(item.get("name"), str) and item["name"]:
            entry = {"name": item["name"][:100]}
            if isinstance(item.get("role"), str):
                entry["role"] = item["role"][:100]
            groups.append(entry)
    return groups


# --- checks (pure, no database) -----------------------------------------------------------------------


def check_session_pubkey(frame: dict[str, Any]) -> str | None:
    """Step 1. "" / null mean absent ([PY] §10 item 12)."""
    value = frame.get("sessionPubkey")
    if value in (None, ""):
        return None
    if not isinstance(value, str) or not SESSION_PUBKEY.fullmatch(value):
        raise HandshakeRejected("bad_session_pubkey", "sessionPubkey must be 64 lowercase hex chars")
    return value


def check_hello(*, frame: dict[str, Any], lookup: HelloLookup, now_ms: int) -> Hello:
    """Steps 2–6 of §2.4 in the reference's order, then the fields the presence row needs."""
    session_pubkey = check_session_pubkey(frame)
    if lookup.live_count >= conf.max_connections_per_mesh():
        raise HandshakeRejected("capacity", "mesh at connection capacity")
    stamp = frame.get("timestamp")
    if (
        isinstance(stamp, bool)
        or not isinstance(stamp, (int, float))
        or (isinstance(stamp, float) and not math.isfinite(stamp))  # isfinite() overflows on huge ints
        or abs(now_ms - stamp) > conf.HELLO_MAX_SKEW_MS
    ):
        raise HandshakeRejected("timestamp_skew")
    mesh_id, member_id = frame.get("meshId"), frame.get("memberId")
    pubkey, signature = frame.get("pubkey"), frame.get("signature")
    if not (isinstance(pubkey, str) and HEX64.fullmatch(pubkey) and isinstance(signature, str) and HEX128.fullmatch(signature)):
        raise HandshakeRejected("malformed")
    if not isinstance(mesh_id, str) or not isinstance(member_id, str):
        raise HandshakeRejected("malformed")
    try:
        valid = hello_signature_valid(
            mesh_id=mesh_id, member_id=member_id, pubkey=pubkey, timestamp=stamp, signature=signature
        )
    except Exception:  # the reference maps a verifier exception to `malformed`
        raise HandshakeRejected("malformed") from None
    if not valid:
        raise HandshakeRejected("bad_signature")
    if lookup.member is None:
        if lookup.revoked:
            mesh = lookup.mesh
            name = (mesh.name or mesh.slug or mesh.id) if mesh else mesh_id
            raise HandshakeRejected(
                "revoked",
                f'You\'ve been removed from "{name}". Contact the mesh owner to rejoin.',
                close_code=4002,
                reason="banned",
            )
        raise HandshakeRejected("unauthorized", "pubkey not found in mesh")
    if lookup.mesh is not None and lookup.mesh.is_archived:
        raise HandshakeRejected("mesh_archived", "this mesh is archived", close_code=4002, reason="mesh_archived")
    session_id, pid, cwd = frame.get("sessionId"), frame.get("pid"), frame.get("cwd")
    if (
        not isinstance(session_id, str)
        or not session_id
        or isinstance(pid, bool)
        or not isinstance(pid, (int, float))
        or not isinstance(cwd, str)
    ):
        raise HandshakeRejected("malformed")
    # Values the presence row cannot hold (NUL, lone surrogates, a pid outside bigint) would fail the insert and
    # leave the socket open and unauthenticated: refuse them as malformed instead.
    texts = [session_id, cwd, *(v for k in ("displayName", "hostname", "peerType", "channel", "model")
                                if isinstance(v := frame.get(k), str))]
    texts += [text for group in _clean_groups(frame.get("groups")) for text in group.values()]
    if not -(2**63) <= pid < 2**63 or not all(storable(text) for text in texts):  # NaN and ±inf fail it too
        raise HandshakeRejected("malformed")
    return Hello(
        mesh_id=mesh_id,
        member_id=lookup.member.id,
        pubkey=pubkey,
        session_pubkey=session_pubkey,
        session_id=session_id[:200],
        pid=int(pid),
        cwd=cwd,
        display_name=_opt_str(frame.get("displayName"), 200),
        hostname=_opt_str(frame.get("hostname"), 255),
        peer_type=_opt_str(frame.get("peerType"), 32),
        channel=_opt_str(frame.get("channel"), 64),
        model=_opt_str(frame.get("model"), 128),
        groups=_clean_groups(frame.get("groups")),
        delivery_ack=frame.get("deliveryAck") is True,
    )


# --- database ------------------------------------------------------------------------------------------


def live_presences(*, now: datetime | None = None):
    """Live = not disconnected and lease still fresh (a dead worker's rows drop out after the lease)."""
    now = now or timezone.now()
    return Presence.objects.filter(
        disconnected_at=None, last_ping_at__gte=now - timedelta(seconds=conf.lease_seconds())
    )


def hello_lookup(*, mesh_id: Any, pubkey: Any) -> HelloLookup:
    if not is_id_fragment(mesh_id):
        return HelloLookup(0, None, None, False)
    mesh = Mesh.objects.filter(pk=mesh_id).first()
    live_count = live_presences().filter(mesh_id=mesh_id).count()
    if mesh is None or not isinstance(pubkey, str) or not HEX64.fullmatch(pubkey):  # no member has any other key
        return HelloLookup(live_count, None, mesh, False)
    rows = list(Member.objects.filter(mesh_id=mesh_id, pubkey=pubkey).order_by("revoked_at"))
    member = next((m for m in rows if m.revoked_at is None), None)
    return HelloLookup(live_count, member, mesh, revoked=member is None and bool(rows))


def _restored_stats(saved: PeerState) -> dict[str, int]:
    stats = saved.cumulative_stats or {}
    return {key: int(stats.get(key, 0) or 0) for key in STATS_KEYS}


@transaction.atomic
def presence_open(*, hello: Hello, member: Member, node_id: str) -> OpenedPresence:
    now = timezone.now()
    # Same (mesh, sessionId) replaces the older connection, on whichever worker it lives (§2.7).
    replaced = list(
        Presence.objects.select_for_update()
        .filter(mesh_id=hello.mesh_id, session_id=hello.session_id, disconnected_at=None)
        .values_list("id", "node_id")
    )
    if replaced:
        Presence.objects.filter(pk__in=[pid for pid, _ in replaced]).update(disconnected_at=now)
    from broker.services.messaging import deliveries_release_orphans

    # What the replaced (or a crashed) connection held unacknowledged is re-sent to this one.
    deliveries_release_orphans(member_id=member.id)
    saved = PeerState.objects.filter(mesh_id=hello.mesh_id, member_id=member.id).first()
    groups = hello.groups or (saved.groups if saved and saved.groups else None) or _clean_groups(member.default_groups)
    status, source, status_at = Status.IDLE, StatusSource.JSONL, now
    pending = (
        PendingHookStatus.objects.filter(
            pid=hello.pid, cwd=hello.cwd, created_at__gte=now - timedelta(seconds=conf.PENDING_HOOK_TTL_SECONDS)
        )
        .order_by("-created_at")
        .first()
    )
    if pending is not None:
        status, source = pending.status, StatusSource.HOOK
        pending.delete()
    display_name = hello.display_name or member.display_name
    presence = Presence.objects.create(
        mesh_id=hello.mesh_id,
        member=member,
        member_pubkey=member.pubkey,
        session_id=hello.session_id,
        session_pubkey=hello.session_pubkey,
        display_name=display_name,
        pid=hello.pid,
        cwd=hello.cwd,
        hostname=hello.hostname,
        peer_type=hello.peer_type,
        channel=hello.channel,
        model=hello.model,
        status=status,
        status_source=source,
        status_updated_at=status_at,
        groups=groups,
        visible=saved.visible if saved else True,
        profile=saved.profile if saved else {},
        delivery_ack=hello.delivery_ack,
        node_id=node_id,
        connected_at=now,
        last_ping_at=now,
    )
    audit_append(
        mesh_id=hello.mesh_id,
        event_type="peer_joined",
        actor_member_id=member.id,
        actor_display_name=display_name,
        payload={"presenceId": presence.id, "sessionId": hello.session_id},
    )
    ack: dict[str, Any] = {
        "type": "hello_ack",
        "presenceId": presence.id,
        "memberDisplayName": display_name,
        "memberProfile": {
            "roleTag": member.role_tag or None,
            "groups": _clean_groups(member.default_groups),
            "messageMode": member.message_mode or "push",
        },
        "meshPolicy": {"selfEditable": dict(SELF_EDITABLE)},
    }
    event_data: dict[str, Any] = {"name": display_name, "pubkey": presence.routing_pubkey, "groups": groups}
    if saved is not None:
        ack["restored"] = True
        if saved.last_summary:
            ack["lastSummary"] = saved.last_summary
        ack["lastSeenAt"] = wire.iso_or_none(saved.last_seen_at)
        if not hello.groups and saved.groups:
            ack["restoredGroups"] = saved.groups
        ack["restoredStats"] = _restored_stats(saved)
        event_data["lastSeenAt"] = wire.iso_or_none(saved.last_seen_at)
        event_data["summary"] = saved.last_summary or None
    ack.update({"services": [], "protocolVersion": 1, "deliveryAck": True})
    event = "peer_returned" if saved is not None else "peer_joined"
    return OpenedPresence(
        presence=presence,
        ack=ack,
        join_event=wire.system_push(hello.mesh_id, event, event_data),
        replaced=replaced,
    )


def _merge_stats(cumulative: dict[str, Any], stats: dict[str, Any] | None) -> dict[str, Any]:
    merged = {key: int(cumulative.get(key, 0) or 0) for key in STATS_KEYS}
    for key in STATS_KEYS:
        value = (stats or {}).get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            merged[key] += int(value)
    return merged


@transaction.atomic
def presence_close(*, presence_id: str) -> ClosedPresence | None:
    """Full disconnect path, run exactly once per presence (§2.9, [PY] §10 item 2).

    `was_live` is False when someone else (a replacing hello, the stale sweep) closed the row first; that
    someone owns the `peer_left` event.
    """
    presence = Presence.objects.select_for_update().filter(pk=presence_id).first()
    if presence is None:
        return None
    now = timezone.now()
    was_live = presence.disconnected_at is None
    if was_live:
        presence.disconnected_at = now
        presence.save(update_fields=["disconnected_at"])
    saved = PeerState.objects.select_for_update().filter(mesh_id=presence.mesh_id, member_id=presence.member_id).first()
    if saved is None:
        saved = PeerState(mesh_id=presence.mesh_id, member_id=presence.member_id)
    saved.groups = presence.groups
    saved.profile = presence.profile
    saved.visible = presence.visible
    saved.last_display_name = presence.display_name
    saved.cumulative_stats = _merge_stats(saved.cumulative_stats or {}, presence.stats)
    saved.last_seen_at = now
    saved.last_summary = presence.summary
    saved.save()
    if was_live:
        audit_append(
            mesh_id=presence.mesh_id,
            event_type="peer_left",
            actor_member_id=presence.member_id,
            actor_display_name=presence.display_name,
            payload={"presenceId": presence.id},
        )
    from broker.services.messaging import deliveries_release

    deliveries_release(presence_id=presence.id)
    return ClosedPresence(
        presence_id=presence.id,
        mesh_id=presence.mesh_id,
        member_id=presence.member_id,
        was_live=was_live,
        left_event=wire.system_push(
            presence.mesh_id, "peer_left", {"name": presence.display_name, "pubkey": presence.routing_pubkey}
        ),
    )


# --- status engine (§4.3) ------------------------------------------------------------------------------


def effective_status(*, status: str, source: str, updated_at: datetime, now: datetime | None = None) -> str:
    """dnd sticks; a fresh hook status counts; anything else is idle (no transcript inference on a server)."""
    now = now or timezone.now()
    if status == Status.DND:
        return Status.DND
    if source == StatusSource.HOOK and updated_at >= now - timedelta(seconds=conf.HOOK_FRESH_WINDOW_SECONDS):
        return status
    return Status.IDLE


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


def check_status(value: Any) -> str:
    if value not in Status.values:
        raise ValueError("status must be idle, working or dnd")
    return value


@transaction.atomic
def presence_set_status(*, presence_id: str, status: str, source: str) -> Presence | None:
    presence = Presence.objects.select_for_update().filter(pk=presence_id).first()
    if presence is None:
        return None
    presence.save(update_fields=_apply_status(presence, status, source, timezone.now()))
    return presence


def presence_update(*, presence_id: str, **fields: Any) -> None:
    """Fields only this connection writes (summary, groups, visible, profile, stats)."""
    Presence.objects.filter(pk=presence_id).update(**fields)


# --- hook (§4.10) --------------------------------------------------------------------------------------


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


# --- leases and sweeps ---------------------------------------------------------------------------------


def presences_heartbeat(*, node_id: str, presence_ids: list[str]) -> list[str]:
    """Refresh this worker's leases. Returns local presences someone else already closed (close their sockets)."""
    now = timezone.now()
    Presence.objects.filter(node_id=node_id, disconnected_at=None).update(last_ping_at=now)
    if not presence_ids:
        return []
    local = set(presence_ids)
    # Only recently closed rows of this node: no giant IN list with 10k connections.
    recent = Presence.objects.filter(
        node_id=node_id, disconnected_at__gte=now - timedelta(seconds=conf.lease_seconds() + conf.heartbeat_seconds())
    ).values_list("id", flat=True)
    return [presence_id for presence_id in recent if presence_id in local]


def presences_expire() -> list[ClosedPresence]:
    """Close rows whose lease ran out (their worker died): no ghost peers. Each row is closed by one worker."""
    stale_before = timezone.now() - timedelta(seconds=conf.lease_seconds())
    with transaction.atomic():
        ids = list(
            Presence.objects.select_for_update(skip_locked=True)
            .filter(disconnected_at=None, last_ping_at__lt=stale_before)
            .values_list("id", flat=True)[:500]
        )
    closed = []
    for presence_id in ids:
        result = presence_close(presence_id=presence_id)
        if result is not None and result.was_live:
            closed.append(result)
    return closed


def presences_to_evict(*, node_id: str) -> list[str]:
    """Local connections whose member was revoked or whose mesh was archived (safety net for lost events)."""
    return list(
        Presence.objects.filter(node_id=node_id, disconnected_at=None)
        .exclude(member__revoked_at=None, mesh__archived_at=None)
        .values_list("id", flat=True)
    )

