"""A worker's periodic work: the heartbeat (leases, group membership) and the sweep, the safety net for
everything the layer may drop and for dead workers. The sweep is a list of small named jobs, run in order;
a failing job is logged and the next sweep runs it again."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from channels.db import database_sync_to_async

from broker import conf, metrics, wire
from broker.closing import ClosePath
from broker.fanout import Fanout
from broker.inflight import InflightLedger
from broker.layer import WorkerLayer
from broker.ratelimit import TokenBuckets
from broker.registry import ConnectionRegistry
from broker.services import deliveries, presence, workers
from meshes.services.files import files_expire

logger = logging.getLogger(__name__)
db = database_sync_to_async
RETENTION_EVERY_SECONDS = 3600
FILES_EVERY_SECONDS = 60  # ephemeral files and abandoned uploads


class Sweeper:
    def __init__(
        self,
        *,
        registry: ConnectionRegistry,
        layer: WorkerLayer,
        fanout: Fanout,
        closes: ClosePath,
        inflight: InflightLedger,
        buckets: TokenBuckets,
        backlog_seconds: Callable[[], float],
    ) -> None:
        self.registry = registry
        self.layer = layer
        self.fanout = fanout
        self.closes = closes
        self.inflight = inflight
        self.buckets = buckets
        self.backlog_seconds = backlog_seconds  # how long this worker's oldest queued send or mark has waited
        self._last_retention = 0.0
        self._last_files = 0.0
        self._beating_since: float | None = None  # since when this worker's beats have all been stored
        self.jobs: list[Callable[[], Awaitable[None]]] = [
            closes.retry_unfinished,
            self.retire_dead_workers,
            self.expire_dead_workers_presences,
            self.release_orphans,
            self.retransmit_stale_pushes,
            self.drain_pending_recipients,
            self.evict_revoked,
            self.refresh_queue_depth,
            self.expire_old_messages,
            self.expire_files,
        ]

    @staticmethod
    async def every(seconds: float, job: Callable[[], Awaitable[None]]) -> None:
        while True:
            await asyncio.sleep(seconds)
            try:
                await job()
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("broker periodic job %s failed", getattr(job, "__name__", job))

    async def heartbeat(self) -> None:
        await self.layer.join_group()
        closed_elsewhere = await db(presence.presences_heartbeat)(
            worker_id=self.layer.worker_id, presence_ids=self.registry.presence_ids(),
            active_ids=self.registry.take_active(),
        )
        for presence_id in closed_elsewhere:
            conn = self.registry.get(presence_id)
            if conn is not None:
                await conn.close(1000, "disconnected_stale")
        self.buckets.forget_idle()

    async def beat(self) -> None:
        """This worker is alive (every BROKER_WORKER_BEAT_SECONDS): a cheap write others judge it by."""
        try:
            await db(workers.worker_beat)(worker_id=self.layer.worker_id)
        except Exception:
            if self._beating_since is not None:  # once per outage, not once a second
                logger.warning("worker beat not stored (database unavailable?)", exc_info=True)
            self._beating_since = None
            return
        if self._beating_since is None:
            self._beating_since = time.monotonic()

    async def sweep(self) -> None:
        for job in self.jobs:
            await job()

    # --- the jobs ------------------------------------------------------------------------------------------

    async def retire_dead_workers(self) -> None:
        # Only a worker that has itself been beating for a whole window judges the others: after a database outage
        # every beat is old, and the first worker back must not retire the rest.
        if self._beating_since is None or time.monotonic() - self._beating_since < conf.worker_dead_seconds():
            return
        for closed in await db(workers.workers_retire_dead)():
            metrics.ttl_sweeps.inc()
            await self.fanout.broadcast(closed.mesh_id, closed.left_event, exclude_member_id=closed.member_id)

    async def expire_dead_workers_presences(self) -> None:
        """The lease: the last resort for presences of a worker that never beat (or whose row is gone)."""
        for closed in await db(presence.presences_expire)():
            metrics.ttl_sweeps.inc()
            await self.fanout.broadcast(closed.mesh_id, closed.left_event, exclude_member_id=closed.member_id)

    async def release_orphans(self) -> None:
        await db(deliveries.deliveries_release_orphans)()

    async def retransmit_stale_pushes(self) -> None:
        if not self.registry:
            return
        # While this worker lags (sends or marks queued), acks lag too: stretch the window by that lag.
        window = conf.retransmit_seconds()
        if window > 0:
            window += self.backlog_seconds()
        stale = await db(deliveries.deliveries_retransmit)(
            worker_id=self.layer.worker_id,
            older_than_seconds=window,
            hold=lambda presence_id, message_id: self.inflight.holds(presence_id, message_id, window),
        )
        self.inflight.forget_stale(3 * window + 60)
        for presence_id, frame in stale:
            conn = self.registry.get(presence_id)
            if conn is not None:
                await conn.deliver_claimed([(frame["messageId"], frame["priority"], wire.dumps(frame))])

    async def drain_pending_recipients(self) -> None:
        if not self.registry:
            return
        for member_id, session in await db(deliveries.pending_recipients)(worker_id=self.layer.worker_id):
            for conn in self.registry.of_member(member_id):
                if session is None or session in conn.keys:
                    conn.request_drain()

    async def evict_revoked(self) -> None:
        if not self.registry:
            return
        for presence_id in await db(presence.presences_to_evict)(worker_id=self.layer.worker_id):
            conn = self.registry.get(presence_id)
            if conn is not None:
                await conn.send_frame(wire.error("revoked", "you are no longer a member of this mesh"))
                await conn.close(4002, "banned")

    async def refresh_queue_depth(self) -> None:
        metrics.queue_depth.set(await db(deliveries.queue_depth)())

    async def expire_old_messages(self) -> None:
        now = time.monotonic()
        if now - self._last_retention > RETENTION_EVERY_SECONDS:
            self._last_retention = now
            # A batch per hop: the shared DB thread serves drains and hellos between batches.
            while await db(deliveries.messages_expire)(max_batches=1) == deliveries.RETENTION_BATCH:
                pass

    async def expire_files(self) -> None:
        now = time.monotonic()
        if now - self._last_files > FILES_EVERY_SECONDS:
            self._last_files = now
            await db(files_expire)()
