"""The broker's listeners for committed mesh changes (meshes.events): a revoked member's sockets and an archived
mesh's sockets get an error frame and close 4002, on every worker. Also the dashboard's session kick, which
reaches the sockets the same way.

Listeners run synchronously after commit, maybe in a worker thread: hop onto the worker's loop for the local
sockets; the worker also tells the other workers. The periodic sweep is the safety net if either is lost.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Awaitable, Callable
from typing import Any

from broker import wire
from broker.layer import Evict, Kick, evict_everywhere_sync, send_sync
from broker.services.moderation import KickOutcome, KickRequest, sessions_kick
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
    message = Evict("", mesh_id, member_id, error, CLOSE_REMOVED, reason)
    on_worker_or_layer(
        lambda worker: worker.fanout.evict(mesh_id=mesh_id, member_id=member_id, error=error, code=CLOSE_REMOVED,
                                           reason=reason),
        lambda: evict_everywhere_sync(message),
    )


def session_kick(*, actor, presence_id: str, disconnect: bool = False) -> list[str]:
    """One connection, from synchronous code (the dashboard): selected and audited, then closed on its worker."""
    verb = "disconnected" if disconnect else "kicked"
    outcome = sessions_kick(actor=actor, request=KickRequest(presence_id=presence_id), verb=verb)
    kick_sync(outcome)
    return outcome.names


def kick_sync(outcome: KickOutcome) -> None:
    """Close what a kick selected from synchronous code (the dashboard): on this process's worker, or by asking
    each socket's worker over the layer."""
    def by_layer() -> None:
        for kicked in outcome.kicked:
            send_sync(kicked.worker_id, Kick(kicked.presence_id, outcome.close_code, outcome.close_reason))

    on_worker_or_layer(lambda worker: worker.fanout.close_kicked(outcome), by_layer)


def on_worker_or_layer(make_job: Callable[[Any], Awaitable[None]], without_worker: Callable[[], None]) -> None:
    """Run `make_job(worker)` on this process's broker worker, from any thread; with no worker here (a command,
    an HTTP-only process) ask the workers over the layer instead. The periodic sweeps are the safety net."""
    worker = current_worker()
    if worker is None or worker.loop.is_closed():
        without_worker()
        return

    def start() -> None:
        worker.loop.create_task(make_job(worker))

    try:
        running = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    if running is worker.loop:
        start()
    else:
        # A fresh context: the caller's thread carries asgiref's executor markers, which would make the
        # job's own database calls look like a re-entrant deadlock.
        worker.loop.call_soon_threadsafe(start, context=contextvars.Context())
