"""Reaching connections wherever they live: on this worker directly, on another through the layer. Mesh
events, doorbells, kicks, evictions and pre-claimed pushes go out here, and come in here from other workers."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from broker import wire
from broker.layer import Deliver, DeliverItem, Doorbell, Evict, Kick, LayerMessage, MeshBroadcast, WorkerLayer
from broker.registry import ConnectionRegistry
from broker.services.moderation import KickOutcome

DELIVER_CHUNK_BYTES = 256 * 1024


class Fanout:
    def __init__(self, *, registry: ConnectionRegistry, layer: WorkerLayer) -> None:
        self.registry = registry
        self.layer = layer

    @property
    def worker_id(self) -> str:
        return self.layer.worker_id

    # --- out -----------------------------------------------------------------------------------------------

    async def broadcast(
        self,
        mesh_id: str,
        frame: dict[str, Any],
        *,
        exclude_member_id: str | None = None,
        exclude_presence_id: str | None = None,
        only_member_ids: set[str] | None = None,
    ) -> None:
        """A system event to every connection of the mesh (or of some of its members) on every worker (live only,
        like the reference)."""
        only = tuple(sorted(only_member_ids)) if only_member_ids is not None else None
        message = MeshBroadcast(self.worker_id, mesh_id, frame, exclude_member_id, exclude_presence_id, only)
        await self._broadcast_here(message)
        await self.layer.send_all(message)

    async def ring(self, doorbells: set[tuple[str, str]]) -> None:
        """Ask connections to drain: (worker id, presence id). One doorbell per other worker; drops are tolerated."""
        remote: dict[str, list[str]] = defaultdict(list)
        for worker_id, presence_id in doorbells:
            if worker_id == self.worker_id:
                conn = self.registry.get(presence_id)
                if conn is not None:
                    conn.request_drain()
            else:
                remote[worker_id].append(presence_id)
        for worker_id, presence_ids in remote.items():
            await self.layer.send(worker_id, Doorbell(presence_ids))

    async def kick(self, presence_id: str, worker_id: str, code: int, reason: str) -> None:
        if worker_id == self.worker_id:
            conn = self.registry.get(presence_id)
            if conn is not None:
                await conn.close(code, reason)
        else:
            await self.layer.send(worker_id, Kick(presence_id, code, reason))

    async def close_kicked(self, outcome: KickOutcome) -> None:
        """Close what a kick selected wherever the sockets are; announce the ghosts the service closed itself."""
        for kicked in outcome.kicked:
            await self.kick(kicked.presence_id, kicked.worker_id, outcome.close_code, outcome.close_reason)
        for ghost in outcome.ghosts:
            await self.broadcast(ghost.mesh_id, ghost.left_event, exclude_member_id=ghost.member_id)

    async def evict(self, *, mesh_id: str, member_id: str | None, error: dict[str, Any], code: int, reason: str) -> None:
        """Close a revoked member's (or an archived mesh's) sockets here and on every other worker."""
        message = Evict(self.worker_id, mesh_id, member_id, error, code, reason)
        await self._evict_here(message)
        await self.layer.send_all(message)

    async def deliver_elsewhere(self, worker_id: str, items: list[DeliverItem]) -> None:
        """Pushes for another worker's sockets, in chunks that keep layer messages small. Without a shared layer
        the row waits for the claimer's retransmit or release."""
        chunk: list[DeliverItem] = []
        size = 0
        for item in items:
            chunk.append(item)
            size += len(item[3])
            if size >= DELIVER_CHUNK_BYTES:
                await self.layer.send(worker_id, Deliver(chunk))
                chunk, size = [], 0
        if chunk:
            await self.layer.send(worker_id, Deliver(chunk))

    # --- in ------------------------------------------------------------------------------------------------

    async def on_layer_message(self, message: LayerMessage) -> None:
        if isinstance(message, Deliver):
            for presence_id, message_id, priority, text in message.items:
                conn = self.registry.get(presence_id)
                if conn is not None:
                    await conn.deliver_claimed([(message_id, priority, text)])
        elif isinstance(message, Doorbell):
            for presence_id in message.presences:
                conn = self.registry.get(presence_id)
                if conn is not None:
                    conn.request_drain()
        elif isinstance(message, Kick):
            conn = self.registry.get(message.presence)
            if conn is not None:
                await conn.close(message.code, message.reason)
        elif isinstance(message, MeshBroadcast) and message.origin != self.worker_id:
            await self._broadcast_here(message)
        elif isinstance(message, Evict) and message.origin != self.worker_id:
            await self._evict_here(message)

    async def _broadcast_here(self, message: MeshBroadcast) -> None:
        text = wire.dumps(message.frame)
        only = frozenset(message.only_members) if message.only_members is not None else None
        for conn in self.registry.of_mesh(message.mesh):
            if conn.presence_id == message.exclude_presence or (
                message.exclude_member and conn.member_id == message.exclude_member
            ):
                continue
            if only is not None and conn.member_id not in only:
                continue
            await conn.send_text(text)

    async def _evict_here(self, message: Evict) -> None:
        for conn in self.registry.of_mesh(message.mesh):
            if message.member is None or conn.member_id == message.member:
                await conn.send_frame(message.error)
                await conn.close(message.code, message.reason)
