"""One WebSocket's broker-side state: identity after hello, outbound writes, coalesced drains. What happens to
a written push, a push_ack and a close is the worker's business: the connection is handed those three
callables and knows nothing of batchers, ledgers or other workers."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from channels.db import database_sync_to_async

from broker import conf, metrics, wire
from broker.models import Presence, session_key
from broker.services.deliveries import CLAIM_LIMIT, deliveries_claim
from broker.services.routing import Sender

logger = logging.getLogger(__name__)

Push = tuple[str, str, str]  # (message id, priority, frame text)


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One queued frame: its text, the message ids it completes (a batch's last push), or a close."""

    text: str
    written: tuple[str, ...] = ()
    close: tuple[int, str] | None = None

    @property
    def size(self) -> int:
        return len(self.text)


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
        self.origin: str | None = None  # http(s)://host the client dialled: what invites minted here announce
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
        self._outbox: deque[Outgoing] = deque()
        self._outbox_bytes = 0
        self._wake = asyncio.Event()
        self._room = asyncio.Event()  # set while the outbox is at most half full
        self._room.set()
        self._writer: asyncio.Task | None = None
        self._writer_done = False
        self._cleaned_up = False
        self.active = False  # a frame came in since the last heartbeat
        self.unanswered_sends = 0  # sends accepted for the batcher whose ack is not written yet
        self._send_slot = asyncio.Event()
        self._send_slot.set()

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
    # Every frame goes through this connection's bounded outbox, written by its own writer task, so no caller (a
    # send batch's acks and pushes above all) ever waits on one socket. A socket that falls further behind than the
    # bound is closed 1008 `slow_consumer`; the pushes it never got stay undelivered rows, re-sent at its next hello.

    def _enqueue(self, entry: Outgoing, *, bounded: bool = True) -> bool:
        if self.closed:
            return False
        if bounded and (
            len(self._outbox) >= conf.outbox_max_frames() or self._outbox_bytes + entry.size > conf.outbox_max_bytes()
        ):
            metrics.slow_consumers.inc()
            logger.info("closing slow consumer %s: %d frames, %d bytes waiting", self.presence_id or "(no hello)",
                        len(self._outbox), self._outbox_bytes)
            self._begin_close(1008, "slow_consumer", drop_queued=True)
            asyncio.ensure_future(self.on_closed())
            return False
        self._outbox.append(entry)
        self._outbox_bytes += entry.size
        self._wake_writer()
        return True

    def _wake_writer(self) -> None:
        self._wake.set()
        if self._writer is None:
            self._writer = asyncio.ensure_future(self._write_loop())

    async def _write_loop(self) -> None:
        while True:
            while not self._outbox:
                if self._writer_done:
                    return
                self._wake.clear()
                await self._wake.wait()
            entry = self._outbox.popleft()
            self._outbox_bytes -= entry.size
            try:
                if entry.close is not None:
                    await self._close_socket(code=entry.close[0], reason=entry.close[1])
                    return
                await self._send({"type": "websocket.send", "text": entry.text})
            except Exception:  # the socket is going away; the close path cleans up
                logger.debug("write to a closing socket failed", exc_info=True)
                self._outbox.clear()
                return
            if entry.written:
                self._hooks.written(self, entry.written)
            if not self._room.is_set() and self._has_room():
                self._room.set()

    def _has_room(self) -> bool:
        return len(self._outbox) <= conf.outbox_max_frames() // 2 and self._outbox_bytes <= conf.outbox_max_bytes() // 2

    async def wait_for_room(self) -> None:
        """A drain claims its next rows only once the socket has taken most of the last ones."""
        while not self.closed and not self._has_room():
            self._room.clear()
            await self._room.wait()

    async def send_text(self, text: str) -> None:
        self._enqueue(Outgoing(text))

    async def send_frame(self, frame: dict[str, Any]) -> None:
        self._enqueue(Outgoing(wire.dumps(frame)))

    def _begin_close(self, code: int, reason: str, *, drop_queued: bool = False) -> None:
        """No more frames are taken; the close frame goes out after what is queued (or at once, dropping it)."""
        if not self.closed:
            self._stop_taking(drop_queued=drop_queued, last=Outgoing("", close=(code, reason)))

    def _stop_taking(self, *, drop_queued: bool, last: Outgoing | None = None) -> None:
        """Closed: no frame is taken any more, the writer ends after `last`, nobody waits for room or a send slot."""
        self.closed = True
        if drop_queued:
            self._outbox.clear()
            self._outbox_bytes = 0
        if last is not None:
            self._outbox.append(last)
        self._writer_done = True
        self._room.set()
        self._send_slot.set()
        self._wake_writer()

    async def close(self, code: int, reason: str = "") -> None:
        self._begin_close(code, reason)
        # Clean up now rather than when the client's close handshake comes back (it may never).
        await self.on_closed()

    async def deliver_claimed(self, pushes: list[Push], started: float | None = None, *, drained: bool = False) -> None:
        """Write pushes whose rows this presence holds in flight; they count as written once the writer has
        handed the last of them to the socket. A drain's batch is taken whole (the drain waits for room first, so
        it adds at most one claim's worth); live pushes count against the bound."""
        if self.closed or not pushes:
            return
        bounded = not drained
        *first, (_, _, last_text) = pushes
        for _, _, text in first:
            self._enqueue(Outgoing(text), bounded=bounded)
        if not self._enqueue(Outgoing(last_text, written=tuple(message_id for message_id, _, _ in pushes)), bounded=bounded):
            return
        for priority, count in Counter(priority for _, priority, _ in pushes).items():
            metrics.messages_routed.labels(priority).inc(count)
        if started is not None:
            metrics.delivery_latency.observe(time.monotonic() - started)

    # --- admission -------------------------------------------------------------------------------------
    # A socket with too many unanswered sends is not read until some are answered: frames are handled one at a
    # time, so waiting here leaves the rest in the server's buffers and TCP pushes back on the flooding client.

    async def wait_for_send_slot(self) -> None:
        while not self.closed and self.unanswered_sends >= conf.max_unanswered_sends():
            self._send_slot.clear()
            await self._send_slot.wait()

    def send_taken(self) -> None:
        self.unanswered_sends += 1

    def send_answered(self) -> None:
        self.unanswered_sends -= 1
        if self.unanswered_sends < conf.max_unanswered_sends():
            self._send_slot.set()

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
                await self.wait_for_room()
                if self.closed:
                    break
                frames = await database_sync_to_async(deliveries_claim)(
                    presence_id=self.presence_id, member_id=self.member_id, keys=list(self.keys)
                )
                if frames:
                    pushes = [(f["messageId"], f["priority"], wire.dumps(f)) for f in frames]
                    await self.deliver_claimed(pushes, drained=True)
                if len(frames) < CLAIM_LIMIT and not self._drain_again:
                    break
        except Exception:
            logger.exception("drain failed for presence %s", self.presence_id)
        finally:
            self._draining = False

    # --- close -------------------------------------------------------------------------------------------

    async def on_closed(self) -> None:
        """The disconnect path runs once, whichever side closed first (§2.9)."""
        if self._cleaned_up:
            return
        self._cleaned_up = True
        if not self.closed:  # the client went first: nothing queued can reach it any more
            self._stop_taking(drop_queued=True)
        await self._hooks.closed(self)
