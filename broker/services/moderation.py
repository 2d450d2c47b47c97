"""Kick and disconnect (protocol.md §5.3): which connections of a mesh an owner or admin closes, and the audit
entry. The closes themselves happen on the workers holding the sockets, through their normal disconnect path;
a connection on a dead worker has no socket left, so its row is closed here."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.db.models import Q
from django.utils import timezone

from broker.models import Presence
from broker.services.liveness import dead_worker_ids
from broker.services.presence import ClosedPresence, presence_close
from meshes.actors import Actor
from meshes.errors import ServiceError
from meshes.services.checks import audit, require_moderator
from meshes.text import storable

MAX_STALE_MS = 366 * 24 * 3600 * 1000
KICK_CLOSE = {"kicked": 4001, "disconnected": 1000}


@dataclass(frozen=True)
class KickRequest:
    """One of: every other connection, every other connection silent for `stale_ms`, the connections whose
    name or key is `target`, or one presence (the dashboard's button)."""

    everyone: bool = False
    stale_ms: int | None = None
    target: str | None = None
    presence_id: str | None = None

    @classmethod
    def from_frame(cls, frame: dict[str, Any]) -> KickRequest:
        """§5.3: `all`, `stale`, `target`, checked in that order."""
        if frame.get("all") is True:
            return cls(everyone=True)
        stale = frame.get("stale")
        if stale is not None:
            if isinstance(stale, bool) or not isinstance(stale, (int, float)) or not 0 <= stale <= MAX_STALE_MS:
                raise ServiceError("invalid", "stale must be a number of milliseconds")
            return cls(stale_ms=int(stale))
        target = frame.get("target")
        if isinstance(target, str) and target.strip():
            return cls(target=target.strip())
        raise ServiceError("invalid", "target required (or all, or stale)")


@dataclass(frozen=True)
class Kicked:
    presence_id: str
    worker_id: str
    name: str


@dataclass
class KickOutcome:
    kicked: list[Kicked]  # close these sockets on their workers
    ghosts: list[ClosedPresence]  # rows of dead workers, closed here: their `peer_left` is the caller's to send
    close_code: int  # §2.10: 4001 kicked (stays out), 1000 disconnected (comes back)
    close_reason: str  # `kicked`, `kicked_stale`, `disconnected`, `disconnected_stale`

    @property
    def names(self) -> list[str]:
        return [k.name or k.presence_id for k in self.kicked]


def _selected(actor: Actor, request: KickRequest, caller_presence_id: str | None):
    rows = Presence.objects.filter(mesh=actor.mesh, disconnected_at=None)
    if request.presence_id is not None:
        return rows.filter(pk=request.presence_id)
    if request.target is not None:
        target = request.target
        if not storable(target):
            return rows.none()
        prefix = target.lower()
        return rows.filter(
            Q(display_name=target) | Q(member_pubkey__startswith=prefix) | Q(session_pubkey__startswith=prefix)
        )
    others = rows.exclude(pk=caller_presence_id) if caller_presence_id else rows
    if request.stale_ms is not None:
        return others.filter(last_active_at__lt=timezone.now() - timedelta(milliseconds=request.stale_ms))
    return others


def sessions_kick(*, actor: Actor, request: KickRequest, verb: str, caller_presence_id: str | None = None) -> KickOutcome:
    """`verb` is the close reason (`kicked`, `disconnected`), which is also §5.3's refusal wording."""
    require_moderator(actor, verb)
    dead = dead_worker_ids()
    kicked, ghosts = [], []
    for row in _selected(actor, request, caller_presence_id).order_by("connected_at", "id"):
        entry = Kicked(row.id, row.worker_id, row.display_name)
        kicked.append(entry)
        if row.worker_id in dead:
            closed = presence_close(presence_id=row.id)
            if closed is not None and closed.announce:
                ghosts.append(closed)
    if kicked:
        how = "all" if request.everyone else "stale" if request.stale_ms is not None else "target"
        audit(actor, f"sessions_{verb}", {"names": [k.name for k in kicked][:100], "count": len(kicked), "how": how})
    reason = f"{verb}_stale" if request.stale_ms is not None else verb
    return KickOutcome(kicked, ghosts, KICK_CLOSE[verb], reason)

