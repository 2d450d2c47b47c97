"""The disconnect path of a connection, run once whoever closed it (§2.9): admission released, the socket
unregistered, its ack-less writes marked, its presence closed (state saved, rows released) and `peer_left`
sent. A close the database refused is kept and retried by the sweeper: the heartbeat would otherwise keep
that row's lease fresh forever."""

from __future__ import annotations

import logging

from channels.db import database_sync_to_async

from broker.batcher import Batcher
from broker.connection import Connection
from broker.fanout import Fanout
from broker.registry import ConnectionRegistry
from broker.services.presence import presence_close

logger = logging.getLogger(__name__)


class ClosePath:
    def __init__(self, *, registry: ConnectionRegistry, marks: Batcher, fanout: Fanout) -> None:
        self.registry = registry
        self.marks = marks
        self.fanout = fanout
        self.unfinished: dict[str, tuple[str, str]] = {}  # presence id → (mesh id, member id)

    async def closed(self, conn: Connection) -> None:
        self.registry.release_ip(conn.ip)
        if not conn.authenticated:
            return
        self.registry.unregister(conn)
        # Rows already written to an ack-less socket are delivered, not released; wait for those marks only.
        await self.marks.settle()
        try:
            await self._close_presence(conn.presence_id, conn.mesh_id, conn.member_id)
        except Exception:
            logger.exception("closing presence %s failed; the sweep retries it", conn.presence_id)
            self.unfinished[conn.presence_id] = (conn.mesh_id, conn.member_id)

    async def retry_unfinished(self) -> None:
        for presence_id, (mesh_id, member_id) in list(self.unfinished.items()):
            await self._close_presence(presence_id, mesh_id, member_id)
            del self.unfinished[presence_id]

    async def _close_presence(self, presence_id: str, mesh_id: str, member_id: str) -> None:
        """Close the row (state saved, rows released); whoever closed it first owns `peer_left`."""
        closed = await database_sync_to_async(presence_close)(presence_id=presence_id)
        if closed is not None and closed.announce:
            await self.fanout.broadcast(mesh_id, closed.left_event, exclude_member_id=member_id)
