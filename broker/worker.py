"""One worker per broker process (per event loop): builds its parts and starts their tasks. The parts call
one way: sweeper → close path → fan-out → registry → connection, pipelines → fan-out; none of them knows
the worker, and a connection knows only the three hooks it is handed.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import weakref

from channels.db import database_sync_to_async
from django.conf import settings

from broker import conf
from broker.closing import ClosePath
from broker.connection import Connection, ConnectionHooks
from broker.dbthread import DbThread
from broker.fanout import Fanout
from broker.inflight import InflightLedger
from broker.layer import WorkerLayer
from broker.pipelines import MarkPipeline, SendPipeline
from broker.ratelimit import SharedTokenBuckets, TokenBuckets
from broker.registry import ConnectionRegistry
from broker.scheduler import Scheduler
from broker.services.workers import worker_retire
from broker.sweeper import Sweeper

logger = logging.getLogger(__name__)
SHUTDOWN_CLOSE_SECONDS = 10.0


class Worker:
    def __init__(self, loop: asyncio.AbstractEventLoop):
        self.loop = loop
        switch = conf.switch_interval_seconds()
        if switch is not None:
            # The DB threads come back from every Postgres round trip needing the GIL while the event loop holds
            # it; with Python's default 5 ms they may wait that long each time, several times per batch.
            sys.setswitchinterval(switch)
        self.layer = WorkerLayer()
        self.registry = ConnectionRegistry()
        self.fanout = Fanout(registry=self.registry, layer=self.layer)
        self.inflight = InflightLedger()
        burst, per_min = conf.send_rate()
        self.send_buckets = TokenBuckets(burst=burst, per_minute=per_min)
        self.shared_send_buckets = _shared_buckets(self.layer, self.send_buckets, burst, per_min)
        # Postgres takes concurrent writers; SQLite (one writer) keeps everything on Django's shared DB thread.
        self.db_threads: list[DbThread] = []
        if settings.DATABASES["default"]["ENGINE"].endswith("postgresql"):
            self.db_threads = [DbThread(f"broker-{n}") for n in ("sends", "marks")]
        send_thread, mark_thread = (self.db_threads + [None, None])[:2]
        self.sends = SendPipeline(
            registry=self.registry,
            fanout=self.fanout,
            buckets=self.send_buckets,
            shared_buckets=self.shared_send_buckets,
            thread=send_thread,
        )
        self.marks = MarkPipeline(inflight=self.inflight, thread=mark_thread)
        self.scheduler = Scheduler(sends=self.sends)
        self.closes = ClosePath(registry=self.registry, marks=self.marks.batcher, fanout=self.fanout)
        self.sweeper = Sweeper(
            registry=self.registry,
            layer=self.layer,
            fanout=self.fanout,
            closes=self.closes,
            inflight=self.inflight,
            buckets=self.send_buckets,
            backlog_seconds=lambda: max(self.sends.batcher.backlog_seconds(), self.marks.batcher.backlog_seconds()),
        )
        self.hooks = ConnectionHooks(written=self.marks.written, acknowledged=self.marks.acknowledged, closed=self.closes.closed)
        self.sockets: weakref.WeakSet[Connection] = weakref.WeakSet()  # every open socket, said hello or not
        self._tasks: list[asyncio.Task] = []
        self._started = False
        self._start_lock = asyncio.Lock()

    @property
    def worker_id(self) -> str:
        return self.layer.worker_id

    async def ensure_started(self) -> None:
        if self._started:
            return
        async with self._start_lock:
            if self._started:
                return
            if self.layer.remote:
                await self.layer.open()
                self._tasks.append(asyncio.ensure_future(self.layer.listen(self.fanout.on_layer_message)))
            await self.sweeper.beat()  # before the first hello: a worker that dies at once is known to have lived
            self._tasks.append(asyncio.ensure_future(Sweeper.every(conf.worker_beat_seconds(), self.sweeper.beat)))
            self._tasks.append(asyncio.ensure_future(Sweeper.every(conf.heartbeat_seconds(), self.sweeper.heartbeat)))
            self._tasks.append(asyncio.ensure_future(Sweeper.every(conf.sweep_seconds(), self.sweeper.sweep)))
            self._tasks.append(asyncio.ensure_future(self.scheduler.run()))
            self._started = True

    def connection(self, *, send, close_socket, ip: str, origin: str | None = None) -> Connection:
        conn = Connection(send=send, close_socket=close_socket, ip=ip, hooks=self.hooks)
        conn.origin = origin
        self.sockets.add(conn)
        return conn

    async def shutdown(self, *, timeout: float = SHUTDOWN_CLOSE_SECONDS) -> None:
        """The process is going away: every socket hears 1001 `shutting down` (so its client reconnects at once,
        to another worker) and its presence is closed on the way out, state saved and rows released."""
        closing = [asyncio.ensure_future(conn.close(1001, "shutting down")) for conn in list(self.sockets) if not conn.closed]
        if closing:
            _, late = await asyncio.wait(closing, timeout=timeout)
            if late:
                logger.warning("%d sockets did not close within %.0f s; retiring their presences", len(late), timeout)
        try:  # whatever is still open here is closed now, and this worker forgotten: nobody waits for a lease
            for closed in await database_sync_to_async(worker_retire)(worker_id=self.worker_id):
                await self.fanout.broadcast(closed.mesh_id, closed.left_event, exclude_member_id=closed.member_id)
        except Exception:
            logger.exception("retiring this worker's presences failed; the other workers retire them")
        await self.stop()

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        if self._tasks:  # bounded: a channel-layer receive may take a moment to notice the cancellation
            await asyncio.wait(self._tasks, timeout=2)
        await self.sends.batcher.drain()
        await self.marks.batcher.drain()
        if self.shared_send_buckets is not None:
            await self.shared_send_buckets.close()
        for thread in self.db_threads:
            await thread.close()


def _shared_buckets(layer: WorkerLayer, local: TokenBuckets, burst: int, per_min: int) -> SharedTokenBuckets | None:
    """Send limits shared by every worker (Redis), when there are other workers; the local buckets stand in
    whenever Redis does not answer."""
    redis_url = getattr(settings, "REDIS_URL", "")
    if not (layer.remote and redis_url and conf.get("BROKER_SHARED_RATE_LIMIT", True)):
        return None
    return SharedTokenBuckets(
        redis_url=redis_url,
        prefix=conf.get("CHANNEL_LAYERS", {}).get("default", {}).get("CONFIG", {}).get("prefix", "claudemesh"),
        burst=burst,
        per_minute=per_min,
        fallback=local,
    )


_worker: Worker | None = None


def get_worker() -> Worker:
    """The worker of the running event loop (tests run one loop per test, servers one per process)."""
    global _worker
    loop = asyncio.get_running_loop()
    if _worker is None or _worker.loop is not loop:
        _worker = Worker(loop)
    return _worker


def current_worker() -> Worker | None:
    return _worker


async def shutdown_current_worker() -> None:
    """Graceful shutdown of this process's worker (the server calls it on SIGTERM, before its own shutdown)."""
    global _worker
    worker = _worker
    if worker is None:
        return
    await worker.shutdown()
    _worker = None


async def stop_current_worker() -> None:
    """Cancel the periodic jobs and listener (tests, graceful shutdown)."""
    global _worker
    worker = _worker
    if worker is None:
        return
    await worker.stop()
    _worker = None
