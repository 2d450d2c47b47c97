"""The presence lifecycle (protocol.md §2.5–2.9): open after a checked hello, close exactly once, the
per-connection fields only that connection writes, and the leases that keep a dead worker's rows from
haunting the mesh. Events are returned to the caller, which publishes them only after the commit.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from broker import conf, wire
from broker.models import PeerState, Presence, SessionKey, Status, StatusSource
from broker.presence_fields import clean_groups, stats_merged
from broker.services.deliveries import deliveries_release, deliveries_release_orphans
from broker.services.handshake import HandshakeRejected, Hello
from broker.services.liveness import live_presences
from broker.services.status import pending_hook_status_take
from meshes.models import Member
from protocol.encoding import iso_or_none

EXPIRE_BATCH = 500


@dataclass
class OpenedPresence:
    presence: Presence
    ack: dict[str, Any]
    join_event: dict[str, Any]
    replaced: list[tuple[str, str]] = field(default_factory=list)  # (presence id, worker id)


@dataclass(frozen=True)
class ClosedPresence:
    presence_id: str
    mesh_id: str
    member_id: str
    announce: bool  # this close owns the `peer_left` event
    left_event: dict[str, Any]


def _claim_session_key(*, hello: Hello, member: Member) -> None:
    """[PY] The first member to declare a session key owns it; another member's hello with it is refused."""
    if hello.session_pubkey is None:
        return
    taken = SessionKey.objects.get_or_create(
        mesh_id=hello.mesh_id, session_pubkey=hello.session_pubkey, defaults={"member": member}
    )[0].member_id != member.id or (
        Member.objects.filter(mesh_id=hello.mesh_id, pubkey=hello.session_pubkey).exclude(pk=member.id).exists()
    )
    if taken:
        raise HandshakeRejected("session_pubkey_taken", "sessionPubkey belongs to another member of this mesh")


@transaction.atomic
def presence_open(*, hello: Hello, member: Member, worker_id: str, ip: str = "") -> OpenedPresence:
    now = timezone.now()
    _claim_session_key(hello=hello, member=member)
    # Same (mesh, member, sessionId) replaces the older connection, on whichever worker it lives (§2.7); [PY]
    # another member's session never does, whatever sessionId it claims.
    replaced = list(
        Presence.objects.select_for_update()
        .filter(mesh_id=hello.mesh_id, member_id=member.id, session_id=hello.session_id, disconnected_at=None)
        .values_list("id", "worker_id")
    )
    if replaced:
        Presence.objects.filter(pk__in=[pid for pid, _ in replaced]).update(disconnected_at=now)
    # What the replaced (or a crashed) connection held unacknowledged is re-sent to this one.
    deliveries_release_orphans(member_id=member.id)
    saved = PeerState.objects.filter(mesh_id=hello.mesh_id, member_id=member.id).first()
    groups = hello.groups or (saved.groups if saved and saved.groups else None) or clean_groups(member.default_groups)
    status, source = Status.IDLE, StatusSource.JSONL
    hook_status = pending_hook_status_take(
        pid=hello.pid, cwd=hello.cwd, now=now, member_id=member.id, ip=ip, signed_hooks=hello.signed_hooks
    )
    if hook_status is not None:
        status, source = hook_status, StatusSource.HOOK
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
        status_updated_at=now,
        groups=groups,
        visible=saved.visible if saved else True,
        profile=saved.profile if saved else {},
        delivery_ack=hello.delivery_ack,
        signed_hooks=hello.signed_hooks,
        ip=ip[:64],
        worker_id=worker_id,
        connected_at=now,
        last_ping_at=now,
    )
    # [PY] Presence is traffic, not governance: it stays out of the audit chain (the live view shows it), so the
    # chain records who changed the mesh and is not buried under every one-shot command's join and leave.
    event_data: dict[str, Any] = {"name": display_name, "pubkey": presence.routing_pubkey, "groups": groups}
    if saved is not None:
        event_data["lastSeenAt"] = iso_or_none(saved.last_seen_at)
        event_data["summary"] = saved.last_summary or None
    return OpenedPresence(
        presence=presence,
        ack=wire.hello_ack(presence=presence, member=member, saved=saved, hello_groups=hello.groups),
        join_event=wire.system_push(hello.mesh_id, "peer_returned" if saved is not None else "peer_joined", event_data),
        replaced=replaced,
    )


def _same_session(presence: Presence, other: dict[str, Any]) -> bool:
    """What other peers see as this session: its sessionId, or the key `peer_left` would name."""
    return other["session_id"] == presence.session_id or other["session_pubkey"] == presence.session_pubkey


@transaction.atomic
def presence_close(*, presence_id: str) -> ClosedPresence | None:
    """Full disconnect path, run exactly once per presence (§2.9, [PY] §10 item 2).

    `announce` is False when someone else (a replacing hello, the stale sweep) closed the row first, since that
    someone owns the `peer_left` event, and when the same session is live on another connection already (it
    came back before its old row was closed): no `peer_left` for a session that is there.
    """
    presence = Presence.objects.select_for_update().filter(pk=presence_id).first()
    if presence is None:
        return None
    now = timezone.now()
    was_live = presence.disconnected_at is None
    if was_live:
        presence.disconnected_at = now
        presence.save(update_fields=["disconnected_at"])
    others = list(
        live_presences(now=now)
        .filter(mesh_id=presence.mesh_id, member_id=presence.member_id)
        .exclude(pk=presence.id)
        .values("connected_at", "session_id", "session_pubkey")
    )  # a member's few other live connections: one read answers both questions below
    saved = PeerState.objects.select_for_update().filter(mesh_id=presence.mesh_id, member_id=presence.member_id).first()
    if saved is None:
        saved = PeerState(mesh_id=presence.mesh_id, member_id=presence.member_id)
    # The member's longest-lived live connection owns the saved state: a short CLI connection that comes and goes
    # beside it must not overwrite its groups, profile and visibility.
    if not any(other["connected_at"] < presence.connected_at for other in others):
        saved.groups = presence.groups
        saved.profile = presence.profile
        saved.visible = presence.visible
        saved.last_display_name = presence.display_name
        saved.last_summary = presence.summary
    saved.cumulative_stats = stats_merged(saved.cumulative_stats, presence.stats)
    saved.last_seen_at = now
    saved.save()
    deliveries_release(presence_id=presence.id)
    return ClosedPresence(
        presence_id=presence.id,
        mesh_id=presence.mesh_id,
        member_id=presence.member_id,
        announce=was_live and not any(_same_session(presence, other) for other in others),
        left_event=wire.system_push(
            presence.mesh_id, "peer_left", {"name": presence.display_name, "pubkey": presence.routing_pubkey}
        ),
    )


def presence_update(*, presence_id: str, **fields: Any) -> None:
    """Fields only this connection writes (summary, groups, visible, profile, stats), already cleaned."""
    Presence.objects.filter(pk=presence_id).update(**fields)


# --- leases ---------------------------------------------------------------------------------------------


def presences_heartbeat(*, worker_id: str, presence_ids: list[str], active_ids: list[str] = ()) -> list[str]:
    """Refresh this worker's leases (and the activity time of connections that sent something). Returns local
    presences someone else already closed (close their sockets)."""
    now = timezone.now()
    Presence.objects.filter(worker_id=worker_id, disconnected_at=None).update(last_ping_at=now)
    for start in range(0, len(active_ids), EXPIRE_BATCH):
        Presence.objects.filter(pk__in=active_ids[start:start + EXPIRE_BATCH]).update(last_active_at=now)
    if not presence_ids:
        return []
    local = set(presence_ids)
    # Only recently closed rows of this worker: no giant IN list with 10k connections.
    recent = Presence.objects.filter(
        worker_id=worker_id,
        disconnected_at__gte=now - timedelta(seconds=conf.lease_seconds() + conf.heartbeat_seconds()),
    ).values_list("id", flat=True)
    return [presence_id for presence_id in recent if presence_id in local]


def presences_expire() -> list[ClosedPresence]:
    """Close rows whose lease ran out (their worker died): no ghost peers. Each row is closed by one worker."""
    stale_before = timezone.now() - timedelta(seconds=conf.lease_seconds())
    with transaction.atomic():
        ids = list(
            Presence.objects.select_for_update(skip_locked=True)
            .filter(disconnected_at=None, last_ping_at__lt=stale_before)
            .values_list("id", flat=True)[:EXPIRE_BATCH]
        )
    closed = []
    for presence_id in ids:
        result = presence_close(presence_id=presence_id)
        if result is not None and result.announce:
            closed.append(result)
    return closed


def presences_to_evict(*, worker_id: str) -> list[str]:
    """Local connections whose member was revoked or whose mesh was archived (safety net for lost events)."""
    return list(
        Presence.objects.filter(worker_id=worker_id, disconnected_at=None)
        .exclude(member__revoked_at=None, mesh__archived_at=None)
        .values_list("id", flat=True)
    )
