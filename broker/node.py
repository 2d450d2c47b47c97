"""One per worker process (per event loop): the local socket registry, the batchers, the channel-layer
listener (doorbells, kicks, mesh events from other workers) and the periodic heartbeat and sweeps.

The channel layer is only a doorbell: any message on it may be dropped (channels-redis capacity/expiry) and
the periodic sweep re-reads pending deliveries from the database, so a lost doorbell only costs latency.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
import uuid
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from channels.db import database_sync_to_async
from channels.layers import InMemoryChannelLayer, get_channel_layer
from django.conf import settings
from django.db import IntegrityError, connections

from broker import conf, metrics, wire
from broker.batcher import Batcher
from broker.inflight import InflightLedger
from broker.ratelimit import SharedTokenBuckets, TokenBuckets, send_limit_text
from broker.services import messaging, presence

if TYPE_CHECKING:
    from broker.connection import Peer

logger = logging.getLogger(__name__)
db = database_sync_to_async
DELIVER_CHUNK_BYTES = 256 * 1024


class Node:
    def __init__(self, loop: asyncio.AbstractEventLoop):
        self.loop = loop
        switch = conf.switch_interval_seconds()
        if switch is not None:
            # The DB threads come back from every Postgres round trip needing the GIL while the event loop holds
            # it; with Python's default 5 ms they may wait that long each time, several times per batch.
            sys.setswitchinterval(switch)
        self.layer = get_channel_layer()
        # Other workers exist only behind a shared layer; the in-memory layer means "this process is the broker".
        self.remote = self.layer is not None and not isinstance(self.layer, InMemoryChannelLayer)
        self.node_id = f"local.{uuid.uuid4().hex}"
        self.peers: dict[str, Peer] = {}
        self.by_mesh: dict[str, set[Peer]] = defaultdict(set)
        self.ip_counts: Counter[str] = Counter()
        burst, per_min = conf.send_rate()
        self.send_buckets = TokenBuckets(burst=burst, per_minute=per_min)
        self.shared_send_buckets: SharedTokenBuckets | None = None
        redis_url = getattr(settings, "REDIS_URL", "")
        if self.remote and redis_url and conf.get("BROKER_SHARED_RATE_LIMIT", True):
            self.shared_send_buckets = SharedTokenBuckets(
                redis_url=redis_url,
                prefix=conf.get("CHANNEL_LAYERS", {}).get("default", {}).get("CONFIG", {}).get("prefix", "claudemesh"),
                burst=burst,
                per_minute=per_min,
                fallback=self.send_buckets,
            )
        # Postgres takes concurrent writers; SQLite (one writer) keeps everything on Django's shared DB thread.
        self.executors: list[ThreadPoolExecutor] = []
        if settings.DATABASES["default"]["ENGINE"].endswith("postgresql"):
            self.executors = [ThreadPoolExecutor(1, thread_name_prefix=f"broker-{n}") for n in ("sends", "marks")]
        send_ex, mark_ex = (self.executors + [None, None])[:2]
        self.sends = Batcher(
            window=conf.batch_seconds(),
            flush_fn=self._flush_sends,
            done_fn=self._sends_done,
            executor=send_ex,
            prepare=self._rate_limit_sends,
            pipeline=True,
        )
        self.marks = Batcher(
            window=conf.batch_seconds(), flush_fn=self._flush_marks, done_fn=self._marks_done, executor=mark_ex
        )
        self.inflight = InflightLedger()
        self.unfinished_closes: dict[str, tuple[str, str]] = {}  # presence id → (mesh id, member id)
        self._tasks: list[asyncio.Task] = []
        self._started = False
        self._start_lock = asyncio.Lock()

    # --- lifecycle ---------------------------------------------------------------------------------------

    async def ensure_started(self) -> None:
        if self._started:
            return
        async with self._start_lock:
            if self._started:
                return
            if self.remote:
                self.node_id = await self.layer.new_channel("broker")
                await self._join_nodes_group()
                self._tasks.append(asyncio.ensure_future(self._listen()))
            self._tasks.append(asyncio.ensure_future(self._every(conf.heartbeat_seconds(), self.heartbeat)))
            self._tasks.append(asyncio.ensure_future(self._every(conf.sweep_seconds(), self.sweep)))
            self._started = True

    async def _join_nodes_group(self) -> None:
        try:
            await self.layer.group_add(conf.NODES_GROUP, self.node_id)
        except Exception:
            logger.warning("could not join the nodes group; will retry at the next heartbeat", exc_info=True)

    async def _every(self, seconds: float, job) -> None:
        while True:
            await asyncio.sleep(seconds)
            try:
                await job()
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("broker periodic job %s failed", getattr(job, "__name__", job))

    # --- local registry ----------------------------------------------------------------------------------

    def admit_ip(self, ip: str) -> bool:
        if self.ip_counts[ip] >= conf.max_connections_per_ip():
            return False
        self.ip_counts[ip] += 1
        return True

    def release_ip(self, ip: str) -> None:
        self.ip_counts[ip] -= 1
        if self.ip_counts[ip] <= 0:
            del self.ip_counts[ip]

    def register(self, peer: Peer) -> None:
        self.peers[peer.presence_id] = peer
        self.by_mesh[peer.mesh_id].add(peer)
        metrics.connections_active.set(len(self.peers))

    def unregister(self, peer: Peer) -> None:
        if self.peers.get(peer.presence_id) is peer:
            del self.peers[peer.presence_id]
        mesh_peers = self.by_mesh.get(peer.mesh_id)
        if mesh_peers is not None:
            mesh_peers.discard(peer)
            if not mesh_peers:
                del self.by_mesh[peer.mesh_id]
        metrics.connections_active.set(len(self.peers))

    # --- fan-out of events, doorbells and kicks ---------------------------------------------------------

    async def broadcast(
        self,
        mesh_id: str,
        frame: dict[str, Any],
        *,
        exclude_member_id: str | None = None,
        exclude_presence_id: str | None = None,
    ) -> None:
        """A system event to every connection of the mesh on every worker (live only, like the reference)."""
        await self._fanout_local(mesh_id, frame, exclude_member_id, exclude_presence_id)
        if self.remote:
            await self._layer_group_send(
                {
                    "type": "mesh_event",
                    "origin": self.node_id,
                    "mesh": mesh_id,
                    "frame": frame,
                    "exclude_member": exclude_member_id,
                    "exclude_presence": exclude_presence_id,
                }
            )

    async def _fanout_local(self, mesh_id, frame, exclude_member_id, exclude_presence_id) -> None:
        text = wire.dumps(frame)
        for peer in list(self.by_mesh.get(mesh_id, ())):
            if peer.presence_id == exclude_presence_id or (exclude_member_id and peer.member_id == exclude_member_id):
                continue
            await peer.send_text(text)

    async def ring(self, doorbells: set[tuple[str, str]]) -> None:
        """Ask connections to drain. Local: directly. Remote: one doorbell per worker; drops are tolerated."""
        remote: dict[str, list[str]] = defaultdict(list)
        for node_id, presence_id in doorbells:
            if node_id == self.node_id:
                peer = self.peers.get(presence_id)
                if peer is not None:
                    peer.request_drain()
            else:
                remote[node_id].append(presence_id)
        if self.remote:
            for node_id, presence_ids in remote.items():
                await self._layer_send(node_id, {"type": "doorbell", "presences": presence_ids})

    async def kick(self, presence_id: str, node_id: str, code: int, reason: str) -> None:
        if node_id == self.node_id:
            peer = self.peers.get(presence_id)
            if peer is not None:
                await peer.close(code, reason)
        elif self.remote:
            await self._layer_send(node_id, {"type": "kick", "presence": presence_id, "code": code, "reason": reason})

    async def evict(self, *, mesh_id: str, member_id: str | None, error: dict[str, Any], code: int, reason: str) -> None:
        """Close a revoked member's (or an archived mesh's) sockets here and on every other worker."""
        await self._evict_local(mesh_id, member_id, error, code, reason)
        if self.remote:
            await self._layer_group_send(
                {
                    "type": "evict",
                    "origin": self.node_id,
                    "mesh": mesh_id,
                    "member": member_id,
                    "error": error,
                    "code": code,
                    "reason": reason,
                }
            )

    async def _evict_local(self, mesh_id, member_id, error, code, reason) -> None:
        for peer in list(self.by_mesh.get(mesh_id, ())):
            if member_id is None or peer.member_id == member_id:
                await peer.send_frame(error)
                await peer.close(code, reason)

    async def _layer_send(self, channel: str, message: dict[str, Any]) -> None:
        try:
            await self.layer.send(channel, message)
        except Exception:  # ChannelFull, Redis down: the sweep makes up for it
            metrics.doorbells_dropped.inc()
            logger.debug("channel-layer send to %s dropped", channel, exc_info=True)

    async def _layer_group_send(self, message: dict[str, Any]) -> None:
        try:
            await self.layer.group_send(conf.NODES_GROUP, message)
        except Exception:
            metrics.doorbells_dropped.inc()
            logger.warning("channel-layer group send dropped", exc_info=True)

    async def _listen(self) -> None:
        while True:
            try:
                message = await self.layer.receive(self.node_id)
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.warning("channel-layer receive failed; retrying", exc_info=True)
                await asyncio.sleep(1)
                continue
            try:
                await self._on_layer_message(message)
            except Exception:
                logger.exception("handling a channel-layer message failed")

    async def _on_layer_message(self, message: dict[str, Any]) -> None:
        kind = message.get("type")
        if kind == "deliver":
            for presence_id, message_id, priority, text in message.get("items", ()):
                peer = self.peers.get(presence_id)
                if peer is not None:
                    await peer.deliver_claimed([(message_id, priority, text)])
        elif kind == "doorbell":
            for presence_id in message.get("presences", ()):
                peer = self.peers.get(presence_id)
                if peer is not None:
                    peer.request_drain()
        elif kind == "kick":
            peer = self.peers.get(message.get("presence"))
            if peer is not None:
                await peer.close(message.get("code", 1000), message.get("reason", ""))
        elif kind == "mesh_event" and message.get("origin") != self.node_id:
            await self._fanout_local(
                message["mesh"], message["frame"], message.get("exclude_member"), message.get("exclude_presence")
            )
        elif kind == "evict" and message.get("origin") != self.node_id:
            await self._evict_local(
                message["mesh"], message.get("member"), message["error"], message["code"], message["reason"]
            )

    # --- sends -------------------------------------------------------------------------------------------

    def _flush_sends(self, batch: list[tuple[Peer, messaging.SendInput, str, float]]):
        inputs = [item for _, item, _, _ in batch]
        try:
            return messaging.messages_accept(inputs=inputs, node_id=self.node_id)
        except IntegrityError:
            # The same clientMessageId committed on another worker meanwhile: the retry finds it and answers
            # with its messageId instead of failing the whole batch.
            return messaging.messages_accept(inputs=inputs, node_id=self.node_id)

    async def _sends_done(self, batch, outcomes, error) -> None:
        if error is not None:
            for peer, _, send_id, _ in batch:
                metrics.messages_rejected.labels("parse_or_handler").inc()
                await peer.send_frame(wire.send_ack(send_id, "", "internal error: message not stored, retry"))
            return
        # Every sender hears its ack before any recipient gets the push (§3.8, §9 item 4).
        for (peer, _, send_id, _), outcome in zip(batch, outcomes, strict=True):
            if outcome.error is not None:
                metrics.messages_rejected.labels(outcome.reject_reason or "no_recipient").inc()
                await peer.send_frame(wire.send_ack(send_id, "", outcome.error))
            else:
                metrics.messages_in.inc()
                await peer.send_frame(wire.send_ack(send_id, outcome.message_id))
        doorbells: set[tuple[str, str]] = set()
        remote: dict[str, list[list[str]]] = defaultdict(list)
        for (_, _, _, started), outcome in zip(batch, outcomes, strict=True):
            if outcome.frame is None:
                continue
            text = wire.dumps(outcome.frame) if outcome.claimed else ""
            message_id, priority = outcome.frame["messageId"], outcome.frame["priority"]
            for node_id, presence_id in outcome.claimed:
                if node_id != self.node_id:
                    remote[node_id].append([presence_id, message_id, priority, text])
                    continue
                peer = self.peers.get(presence_id)
                if peer is not None:  # else: closed meanwhile; its row is released and re-sent
                    await peer.deliver_claimed([(message_id, priority, text)], started)
            doorbells |= outcome.doorbells
        for node_id, items in remote.items():
            await self._send_deliveries(node_id, items)
        if doorbells:
            await self.ring(doorbells)

    async def _send_deliveries(self, node_id: str, items: list[list[str]]) -> None:
        """Pushes for another worker's sockets, in chunks that keep layer messages small."""
        if not self.remote:
            return  # a row claimed for a node that is not reachable waits for retransmit or release
        chunk: list[list[str]] = []
        size = 0
        for item in items:
            chunk.append(item)
            size += len(item[3])
            if size >= DELIVER_CHUNK_BYTES:
                await self._layer_send(node_id, {"type": "deliver", "items": chunk})
                chunk, size = [], 0
        if chunk:
            await self._layer_send(node_id, {"type": "deliver", "items": chunk})

    def send_allowed_locally(self, member_id: str) -> bool:
        """The per-process check, at the door. With shared buckets the batch is checked in one Redis call."""
        return self.shared_send_buckets is not None or self.send_buckets.take(member_id)

    async def _rate_limit_sends(self, batch):
        if self.shared_send_buckets is None:
            return batch
        allowed = await self.shared_send_buckets.take_many([peer.member_id for peer, _, _, _ in batch])
        kept = []
        for entry, ok in zip(batch, allowed, strict=True):
            if ok:
                kept.append(entry)
                continue
            peer, _, send_id, _ = entry
            burst, per_min = conf.send_rate()
            metrics.messages_rejected.labels("rate_limit").inc()
            await peer.send_frame(wire.send_ack(send_id, "", send_limit_text(burst, per_min)))
        return kept

    def submit_send(self, peer: Peer, item: messaging.SendInput, send_id: str) -> None:
        self.sends.add((peer, item, send_id, time.monotonic()))

    # --- delivered marks (ack-less writes and push_ack) ---------------------------------------------------

    def _flush_marks(self, batch: list[messaging.DeliveredMark]) -> int:
        return messaging.deliveries_mark_delivered(marks=batch)

    async def _marks_done(self, batch, result, error) -> None:
        for mark in batch:
            if not mark.by_claim:
                self.inflight.ack_flushed(mark.presence_id, mark.message_ids, stored=error is None)
        if error is not None:  # rows stay in flight; a reconnect re-sends them (at least once)
            logger.warning("could not mark %d delivery batches delivered", len(batch))

    # --- periodic work -----------------------------------------------------------------------------------

    async def heartbeat(self) -> None:
        if self.remote:
            await self._join_nodes_group()  # group membership expires in channels-redis
        closed_elsewhere = await db(presence.presences_heartbeat)(node_id=self.node_id, presence_ids=list(self.peers))
        for presence_id in closed_elsewhere:
            peer = self.peers.get(presence_id)
            if peer is not None:
                await peer.close(1000, "disconnected_stale")
        self.send_buckets.forget_idle()

    async def sweep(self) -> None:
        """Safety net for everything the layer may drop, and lease expiry of dead workers' presences."""
        for presence_id, (mesh_id, member_id) in list(self.unfinished_closes.items()):
            closed = await db(presence.presence_close)(presence_id=presence_id)
            del self.unfinished_closes[presence_id]
            if closed is not None and closed.was_live:
                await self.broadcast(mesh_id, closed.left_event, exclude_member_id=member_id)
        for closed in await db(presence.presences_expire)():
            metrics.ttl_sweeps.inc()
            await self.broadcast(closed.mesh_id, closed.left_event, exclude_member_id=closed.member_id)
        await db(messaging.deliveries_release_orphans)()
        if self.peers:
            # While this worker lags (sends or marks queued), acks lag too: stretch the window by that lag.
            window = conf.retransmit_seconds()
            if window > 0:
                window += max(self.sends.backlog_seconds(), self.marks.backlog_seconds())
            stale = await db(messaging.deliveries_retransmit)(
                node_id=self.node_id,
                older_than_seconds=window,
                hold=lambda presence_id, message_id: self.inflight.holds(presence_id, message_id, window),
            )
            self.inflight.forget_stale(3 * window + 60)
            for presence_id, frame in stale:
                peer = self.peers.get(presence_id)
                if peer is not None:
                    await peer.deliver_claimed([(frame["messageId"], frame["priority"], wire.dumps(frame))])
            for member_id, session in await db(messaging.pending_recipients)(node_id=self.node_id):
                for peer in self.peers_of_member(member_id):
                    if session is None or session in peer.keys:
                        peer.request_drain()
            for presence_id in await db(presence.presences_to_evict)(node_id=self.node_id):
                peer = self.peers.get(presence_id)
                if peer is not None:
                    await peer.send_frame(wire.error("revoked", "you are no longer a member of this mesh"))
                    await peer.close(4002, "banned")
        metrics.queue_depth.set(await db(messaging.queue_depth)())
        now = time.monotonic()
        if now - getattr(self, "_last_retention", 0) > 3600:
            self._last_retention = now
            await db(messaging.messages_expire)()

    def peers_of_member(self, member_id: str) -> list[Peer]:
        return [peer for peer in self.peers.values() if peer.member_id == member_id]


_node: Node | None = None


def get_node() -> Node:
    """The node of the running event loop (tests run one loop per test, servers one per process)."""
    global _node
    loop = asyncio.get_running_loop()
    if _node is None or _node.loop is not loop:
        _node = Node(loop)
    return _node


def current_node() -> Node | None:
    return _node


async def stop_current_node() -> None:
    """Cancel the periodic jobs and listener (tests, graceful shutdown)."""
    global _node
    node = _node
    if node is None:
        return
    for task in node._tasks:
        task.cancel()
    if node._tasks:  # bounded: a channel-layer receive may take a moment to notice the cancellation
        await asyncio.wait(node._tasks, timeout=2)
    await node.sends.drain()
    await node.marks.drain()
    if node.shared_send_buckets is not None:
        await node.shared_send_buckets.close()
    for executor in node.executors:  # their DB connections must not outlive the node
        await asyncio.get_running_loop().run_in_executor(executor, connections.close_all)
        executor.shutdown(wait=False)
    _node = None
