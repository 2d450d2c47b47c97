"""One WebSocket's broker-side state: identity after hello, outbound writes, coalesced drains. What happens to
a written push, a push_ack and a close is the worker's business: the connection is handed those three
callables and knows nothing of batchers, ledgers or other workers."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from channels.db import database_sync_to_async

from broker import metrics, wire
from broker.models import Presence, session_key
from broker.services.deliveries import CLAIM_LIMIT, deliveries_claim
from broker.services.routing import Sender

logger = logging.getLogger(__name__)

Push = tuple[str, str, str]  # (message id, priority, frame text)


@dataclass(frozen=True)
class ConnectionHooks:
    written: Callable[[Connection, tuple[str, ...]], None]  # pushes of claimed rows are on the socket
    acknowledged: Callable[[Connection, list[str]], None]  # the client's push_ack
    closed: Callable[[Connection], Awaitable[None]]  # once, whoever closed it


class Connection:
    def __init__(self, *, send: Callable[[dict[str, Any]], Awaitable[None]], close_socket, ip: str, hooks: ConnectionHooks):
        self._send = send  # the ASGI send itself: Channels' send() wrappers add two calls per push for nothing
        self._close_socket = close_socket
        self._hooks = hooks
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

    def sender(self) -> Sender:
        return Sender(
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
        try:
            await self._send({"type": "websocket.send", "text": text})
        except Exception:  # the socket is going away; the close path cleans up
            logger.debug("write to a closing socket failed", exc_info=True)

    async def send_frame(self, frame: dict[str, Any]) -> None:
        await self.send_text(wire.dumps(frame))

    async def close(self, code: int, reason: str = "") -> None:
        if self.closed:
            return
        try:
            await self._close_socket(code=code, reason=reason)
        except Exception:
            logger.debug("closing a socket failed", exc_info=True)
        # Clean up now rather than when the client's close handshake comes back (it may never).
        await self.on_closed()

    async def deliver_claimed(self, pushes: list[Push], started: float | None = None) -> None:
        """Write pushes whose rows this presence holds in flight."""
        if self.closed:
            return
        for _, _, text in pushes:
            await self.send_text(text)
        for priority, count in Counter(priority for _, priority, _ in pushes).items():
            metrics.messages_routed.labels(priority).inc(count)
        if started is not None:
            metrics.delivery_latency.observe(time.monotonic() - started)
        self._hooks.written(self, tuple(message_id for message_id, _, _ in pushes))

    def acknowledge(self, message_ids: list[str]) -> None:
        self._hooks.acknowledged(self, message_ids)

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
                frames = await database_sync_to_async(deliveries_claim)(
                    presence_id=self.presence_id, member_id=self.member_id, keys=list(self.keys)
                )
                if frames:
                    await self.deliver_claimed([(f["messageId"], f["priority"], wire.dumps(f)) for f in frames])
                if len(frames) < CLAIM_LIMIT and not self._drain_again:
                    break
        except Exception:
            logger.exception("drain failed for presence %s", self.presence_id)
        finally:
            self._draining = False

    # --- close -------------------------------------------------------------------------------------------

    async def on_closed(self) -> None:
        """The disconnect path runs once, whichever side closed first (§2.9)."""
        if self.closed:
            return
        self.closed = True
        await self._hooks.closed(self)
