"""Mesh events published only after the writing transaction commits (a rolled-back write notifies no one).

meshes/ knows nothing of the broker: the broker subscribes a listener at start-up (BrokerConfig.ready).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class MeshEvent:
    kind: str  # member_revoked | mesh_archived | member_role_changed | ...
    mesh_id: str
    data: dict[str, Any] = field(default_factory=dict)


_listeners: list[Callable[[MeshEvent], None]] = []


def subscribe(listener: Callable[[MeshEvent], None]) -> None:
    if listener not in _listeners:
        _listeners.append(listener)


def publish_after_commit(event: MeshEvent) -> None:
    def deliver() -> None:
        for listener in list(_listeners):
            try:
                listener(event)
            except Exception:  # a listener's failure must not undo or hide the committed write
                logger.exception("mesh event listener failed for %s", event.kind)

    transaction.on_commit(deliver)
