"""One WebSocket's broker-side state: identity after hello, outbound writes, drains and delivery marks."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from typing import TYPE_CHECKING, Any

from channels.db import database_sync_to_async

from broker import metrics, wire
from broker.models import Presence, session_key
from broker.services import messaging, presence

if TYPE_CHECKING:
    from broker.node import Node

logger = logging.getLogger(__name__)


class Peer:
    def __init__(self, *, consumer, node: Node, ip: str):
        self.consumer = consumer
        self.node = node
        self.ip = ip
        self.closed = False
        self.presence_id = ""
        self.mesh_id = ""
        self.member_id = ""
        self.member_pubkey = ""
        self.session_pubkey: str | None = None
        self.session_id = ""
        self.display_name = ""
        self.groups: list[dict[str, str]] = []
        self.visible = True
        self.profile: dict[str, Any] = {}
        self.delivery_ack = False
        self.keys: tuple[str, ...] = ()
        self._draining = False
        self._drain_again = False

    # --- identity ----------------------------------------------------------------------------------------

    @property
    def authenticated(self) -> bool:
        return bool(self.presence_id)

    @property
    def routing_pubkey(self) -> str:
        return self.session_pubkey or self.member_pubkey

    def authenticate(self, row: Presence) -> None:
        self.presence_id = row.id
        self.mesh_id = row.mesh_id
        self.member_id = row.member_id
        self.member_pubkey = row.member_pubkey
        self.session_pubkey = row.session_pubkey
        self.session_id = row.session_id
        self.display_name = row.display_name
        self.groups = list(row.groups or [])
        self.visible = row.visible
        self.profile = dict(row.profile or {})
        self.delivery_ack = row.delivery_ack
        # What per-connection delivery rows may be addressed to (the session survives reconnects).
        self.keys = tuple({row.session_key, session_key(None, row.session_id)} | ({row.session_pubkey} if row.session_pubkey else set()))

    def sender(self) -> messaging.Sender:
        return messaging.Sender(
            mesh_id=self.mesh_id,
            member_id=self.member_id,
            member_pubkey=self.member_pubkey,
            session_pubkey=self.session_pubkey,
            presence_id=self.presence_id,
        )

    # --- writes ------------------------------------------------------------------------------------------

    async def send_text(self, text: str) -> None:
        if self.closed:
            return
        try:  # the ASGI message itself: Channels' send() wrappers add two calls per push for nothing
            await self.consumer.base_send({"type": "websocket.send", "text": text})
        except Exception:  # the socket is going away; the close path cleans up
            logger.debug("write to a closing socket failed", exc_info=True)

    async def send_frame(self, frame: dict[str, Any]) -> None:
        await self.send_text(wire.dumps(frame))

    async def close(self, code: int, reason: str = "") -> None:
        if self.closed:
            return
        try:
            await self.consumer.close(code=code, reason=reason)
        except Exception:
            logger.debug("closing a socket failed", exc_info=True)
        # Clean up now rather than when the client's close handshake comes back (it may never).
        await self.on_closed()

    async def deliver_claimed(self, pushes: list[tuple[str, str, str]], started: float | None = None) -> None:
        """Write pushes whose rows this presence holds in flight. Ack-less sockets count them delivered now."""
        if self.closed:
            return
        for _, _, text in pushes:
            await self.send_text(text)
        for priority, count in Counter(priority for _, priority, _ in pushes).items():
            metrics.messages_routed.labels(priority).inc(count)
        if started is not None:
            metrics.delivery_latency.observe(time.monotonic() - started)
        if self.delivery_ack:  # the retransmit clock starts now, not at the claim
            self.node.inflight.wrote(self.presence_id, [message_id for message_id, _, _ in pushes])
        else:
            self.node.marks.add(
                messaging.DeliveredMark(
                    presence_id=self.presence_id,
                    member_id=self.member_id,
                    keys=self.keys,
                    message_ids=tuple(message_id for message_id, _, _ in pushes),
                    by_claim=True,
                )
            )

    def acknowledge(self, message_ids: list[str]) -> None:
        self.node.inflight.ack_queued(self.presence_id, message_ids)  # no retransmit while it is on its way
        self.node.marks.add(
            messaging.DeliveredMark(
                presence_id=self.presence_id,
                member_id=self.member_id,
                keys=self.keys,
                message_ids=tuple(message_ids),
                by_claim=False,
            )
        )

    # --- drains ------------------------------------------------------------------------------------------

    def request_drain(self) -> None:
        """Coalesced: at most one drain runs per connection; a request during it triggers one more pass."""
        if self.closed or not self.authenticated:
            return
        if self._draining:
            self._drain_again = True
            return
        self._draining = True
        asyncio.ensure_future(self._drain_loop())

    async def _drain_loop(self) -> None:
        try:
            while not self.closed:
                self._drain_again = False
                frames = await database_sync_to_async(messaging.deliveries_claim)(
                    presence_id=self.presence_id, member_id=self.member_id, keys=list(self.keys)
                )
                if frames:
                    await self.deliver_claimed([(f["messageId"], f["priority"], wire.dumps(f)) for f in frames])
                if len(frames) < messaging.CLAIM_LIMIT and not self._drain_again:
                    break
        except Exception:
            logger.exception("drain failed for presence %s", self.presence_id)
        finally:
            self._draining = False

    # --- close -------------------------------------------------------------------------------------------

    async def on_closed(self) -> None:
        """The full disconnect path, once (§2.9): marks flushed, state saved, rows released, peer_left sent."""
        if self.closed:
            return
        self.closed = True
        self.node.release_ip(self.ip)
        if not self.authenticated:
            return
        self.node.unregister(self)
        # Rows already written to an ack-less socket are delivered, not released; wait for those marks only.
        await self.node.marks.settle()
        try:
            closed = await database_sync_to_async(presence.presence_close)(presence_id=self.presence_id)
        except Exception:
            # The heartbeat would keep this row's lease fresh: the node's sweep retries the close instead.
            logger.exception("closing presence %s failed; the sweep retries it", self.presence_id)
            self.node.unfinished_closes[self.presence_id] = (self.mesh_id, self.member_id)
            return
        if closed is not None and closed.was_live:
            await self.node.broadcast(self.mesh_id, closed.left_event, exclude_member_id=self.member_id)
