"""The per-mesh audit hash chain (protocol.md §8.7, platform.md Appendix A).

hash = sha256("<prev>|<meshId>|<eventType>|<actorMemberId or null>|<canonical payload>|<createdAt ms Z>")
Appends lock the mesh row so writers of one mesh are serialised and the chain never forks (a unique
constraint on (mesh, prev_hash) backs this up).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import transaction
from django.utils import timezone

from meshes.models import AuditEvent, Mesh
from protocol.encoding import iso_ms

GENESIS = "genesis"


def canonical_json(value: Any) -> str:
    """Keys sorted recursively, no whitespace, non-ASCII as is, integral floats as integers (JSON.stringify)."""

    def normalise(item: Any) -> Any:
        if isinstance(item, dict):
            return {str(key): normalise(item[key]) for key in sorted(item, key=str)}
        if isinstance(item, (list, tuple)):
            return [normalise(element) for element in item]
        if isinstance(item, float) and item.is_integer():
            return int(item)
        return item

    return json.dumps(normalise(value), separators=(",", ":"), ensure_ascii=False, sort_keys=False)


def audit_hash(
    *, prev_hash: str, mesh_id: str, event_type: str, actor_member_id: str | None, payload: Any, created_at: datetime
) -> str:
    text = "|".join(
        [
            prev_hash,
            mesh_id,
            event_type,
            actor_member_id if actor_member_id is not None else "null",
            canonical_json(payload),
            iso_ms(created_at),
        ]
    )
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _truncate_to_ms(moment: datetime) -> datetime:
    return moment.replace(microsecond=(moment.microsecond // 1000) * 1000)


def audit_append(
    *,
    mesh_id: str,
    event_type: str,
    actor_member_id: str | None = None,
    actor_display_name: str | None = None,
    payload: dict[str, Any] | None = None,
) -> AuditEvent:
    """Append one event to the mesh's chain. Joins the caller's transaction when there is one."""
    payload = payload or {}
    with transaction.atomic():
        Mesh.objects.select_for_update().only("id").get(pk=mesh_id)
        last = AuditEvent.objects.filter(mesh_id=mesh_id).order_by("-id").only("hash").first()
        prev_hash = last.hash if last else GENESIS
        created_at = _truncate_to_ms(timezone.now())
        return AuditEvent.objects.create(
            mesh_id=mesh_id,
            event_type=event_type,
            actor_member_id=actor_member_id,
            actor_display_name=actor_display_name,
            payload=payload,
            prev_hash=prev_hash,
            created_at=created_at,
            hash=audit_hash(
                prev_hash=prev_hash,
                mesh_id=mesh_id,
                event_type=event_type,
                actor_member_id=actor_member_id,
                payload=payload,
                created_at=created_at,
            ),
        )


@dataclass(frozen=True)
class ChainVerdict:
    ok: bool
    events: int
    broken_at_id: int | None = None
    broken_at_position: int | None = None  # 1-based "event N" for people
    reason: str = ""


def audit_verify(*, mesh_id: str) -> ChainVerdict:
    """Walk the chain in id order, checking each link and recomputing each hash."""
    expected_prev = GENESIS
    count = 0
    rows = AuditEvent.objects.filter(mesh_id=mesh_id).order_by("id")
    for position, event in enumerate(rows.iterator(chunk_size=500), start=1):
        count = position
        if event.prev_hash != expected_prev:
            return ChainVerdict(False, position, event.id, position, "link to the previous event is broken")
        recomputed = audit_hash(
            prev_hash=event.prev_hash,
            mesh_id=mesh_id,
            event_type=event.event_type,
            actor_member_id=event.actor_member_id,
            payload=event.payload,
            created_at=event.created_at,
        )
        if recomputed != event.hash:
            return ChainVerdict(False, position, event.id, position, "event content does not match its hash")
        expected_prev = event.hash
    return ChainVerdict(True, count)
