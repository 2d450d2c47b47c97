"""Mesh events, published only after the writing transaction commits (a rolled-back write notifies no one).

Every kind is declared here: listeners subscribe per kind, and a kind nobody outside meshes/ needs to act on
is declared audit-only (the audit log already records it). meshes/ knows nothing of the broker: the broker
subscribes its listeners at start-up (BrokerConfig.ready).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from django.db import transaction

logger = logging.getLogger(__name__)


class MeshEventKind(StrEnum):
    MEMBER_REVOKED = "member_revoked"  # data: memberId
    MESH_ARCHIVED = "mesh_archived"
    MEMBER_ROLE_CHANGED = "member_role_changed"  # data: memberId, role


# Peers re-read their member on every manager-only request, so a role change needs no push to anyone.
AUDIT_ONLY = frozenset({MeshEventKind.MEMBER_ROLE_CHANGED})


@dataclass(frozen=True)
class MeshEvent:
    kind: MeshEventKind
    mesh_id: str
    data: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", MeshEventKind(self.kind))  # an unknown kind fails at the publisher


Listener = Callable[[MeshEvent], None]
_listeners: dict[MeshEventKind, list[Listener]] = defaultdict(list)


def subscribe(kind: MeshEventKind, listener: Listener) -> None:
    if kind in AUDIT_ONLY:
        raise ValueError(f"{kind} is declared audit-only: take it out of AUDIT_ONLY to listen to it")
    if listener not in _listeners[kind]:
        _listeners[kind].append(listener)


def listeners_of(kind: MeshEventKind) -> list[Listener]:
    return list(_listeners.get(kind, ()))


def publish_after_commit(event: MeshEvent) -> None:
    def deliver() -> None:
        for listener in listeners_of(event.kind):
            try:
                listener(event)
            except Exception:  # a listener's failure must not undo or hide the committed write
                logger.exception("mesh event listener failed for %s", event.kind)

    transaction.on_commit(deliver)
