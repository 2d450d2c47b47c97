"""The broker's listeners for committed mesh changes (meshes.events): a revoked member's sockets and an archived
mesh's sockets get an error frame and close 4002, on every worker.

Listeners run synchronously after commit, maybe in a worker thread: hop onto the worker's loop for the local
sockets; the worker also tells the other workers. The periodic sweep is the safety net if either is lost.
"""

from __future__ import annotations

import asyncio
import contextvars

from broker import wire
from broker.layer import Evict, evict_everywhere_sync
from broker.worker import current_worker
from meshes.events import MeshEvent, MeshEventKind


def on_member_revoked(event: MeshEvent) -> None:
    _evict(
        mesh_id=event.mesh_id,
        member_id=event.data.get("memberId"),
        error=wire.error("revoked", "you have been removed from this mesh"),
        reason="banned",
    )


def on_mesh_archived(event: MeshEvent) -> None:
    _evict(mesh_id=event.mesh_id, member_id=None, error=wire.error("mesh_archived", "this mesh is archived"), reason="mesh_archived")


CLOSE_REMOVED = 4002  # §2.6: the member is gone from the mesh (or the mesh is): do not reconnect
LISTENERS = {MeshEventKind.MEMBER_REVOKED: on_member_revoked, MeshEventKind.MESH_ARCHIVED: on_mesh_archived}


def _evict(*, mesh_id: str, member_id: str | None, error: dict, reason: str) -> None:
    worker = current_worker()
    if worker is None or worker.loop.is_closed():
        # No broker worker in this process (a command, an HTTP-only process): ask the workers directly.
        evict_everywhere_sync(Evict("", mesh_id, member_id, error, CLOSE_REMOVED, reason))
        return

    def start() -> None:
        worker.loop.create_task(
            worker.fanout.evict(mesh_id=mesh_id, member_id=member_id, error=error, code=CLOSE_REMOVED, reason=reason)
        )

    try:
        running = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    if running is worker.loop:
        start()
    else:
        # A fresh context: the caller's thread carries asgiref's executor markers, which would make the
        # eviction's own database calls look like a re-entrant deadlock.
        worker.loop.call_soon_threadsafe(start, context=contextvars.Context())
