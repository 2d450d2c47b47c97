"""One authenticated WebSocket to one mesh's broker, kept alive (client.md §6, §8; docs/wire-extensions.md).

- `hello` is signed with the member key; an ephemeral session key is announced as `sessionPubkey` and kept
  across reconnects of this object, as is the session id.
- Reconnects use exponential backoff with full jitter ([1, 2, 4, 8, 16, 30] s), reset on every `hello_ack`.
  Close codes 4001 (kicked) and 4002 (banned/revoked) are terminal.
- Requests carry `_reqId`; replies are matched by it, or by type (oldest first) for replies that omit it.
- When the broker acknowledges `deliveryAck`, every handled push is confirmed with `push_ack` and every send
  carries `clientMessageId`, so an unacknowledged send is simply re-sent after a reconnect without risk of a
  duplicate. Without it, a send that was written once is never written again (at most once).
- A call made while disconnected waits for the connection up to its timeout, then fails with the last
  connection error, never silently.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import secrets
import socket
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import websockets
from websockets.asyncio.client import ClientConnection, connect

from peer.config import MeshEntry, debug_enabled
from peer.connection_errors import describe_failure, unreachable
from peer.connection_terms import ConnectionUnavailable, HelloOptions, RequestFailed, TerminalClose
from protocol.crypto import SigningKeypair
from protocol.envelope import WireEnvelope
from protocol.hello import hello_frame

BACKOFF_SECONDS = (1, 2, 4, 8, 16, 30)
HELLO_TIMEOUT = 5.0
REQUEST_TIMEOUT = 5.0
SEND_TIMEOUT = 10.0
MAX_PENDING_SENDS = 100
TERMINAL_CLOSE_CODES = {4001: "kicked from this mesh", 4002: "removed (banned) from this mesh"}
# Hello refusals that go away by themselves: a hello signed in the same millisecond as another process of this
# identity (`replayed`: sign again at once), or this member's connection cap while its other commands finish.
RETRY_HELLO_SECONDS = {"replayed": 0.05, "member_capacity": 0.5, "capacity": 1.0}

PushHandler = Callable[[dict[str, Any]], Awaitable[None]]


@dataclass
class _PendingSend:
    frame: dict[str, Any]
    future: asyncio.Future
    written: bool = False


@dataclass
class _PendingRequest:
    reply_types: tuple[str, ...]
    future: asyncio.Future
    req_id: str


def _log(message: str) -> None:
    if debug_enabled():
        print(f"[broker-client] {message}", file=sys.stderr, flush=True)


def _new_req_id() -> str:
    return secrets.token_hex(8)


class MeshConnection:
    def __init__(self, mesh: MeshEntry, options: HelloOptions, on_push: PushHandler | None = None,
                 session: SigningKeypair | None = None):
        self.mesh = mesh
        self.options = options
        self.on_push = on_push
        # Routing identity of this connection object, kept across its reconnects. Ephemeral unless the caller
        # hands in a stable one (peer/session_slots.py).
        self.session = session or SigningKeypair.generate()
        self.state = "closed"
        self.hello_ack: dict[str, Any] = {}
        self.delivery_ack = False
        self.last_error: str | None = None
        self.hello_rejected = False  # the broker refused our last hello: waiting longer will not help
        self.unreachable = False  # fail_fast: the broker refused the TCP connection or its name does not resolve
        self._rejected_code: str | None = None
        self.terminal: tuple[int, str] | None = None
        self._ws: ClientConnection | None = None
        self._open = asyncio.Event()
        self._changed = asyncio.Event()
        self._sends: dict[str, _PendingSend] = {}
        self._requests: dict[str, _PendingRequest] = {}
        self._pushes: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._closing = False
        self._attempt = 0
        self._tasks: list[asyncio.Task] = []
        self._write_lock = asyncio.Lock()

    # --- lifecycle ----------------------------------------------------------------------------------------

    @property
    def is_open(self) -> bool:
        return self._open.is_set()

    def start(self) -> None:
        if self._tasks:
            return
        self._tasks = [asyncio.create_task(self._run()), asyncio.create_task(self._consume_pushes())]

    async def close(self) -> None:
        self._closing = True
        self._open.clear()
        if self._ws is not None:
            with contextlib.suppress(Exception):
                await self._ws.close()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks = []
        self._fail_everything(ConnectionUnavailable("connection closed"))
        self.state = "closed"

    async def wait_open(self, timeout: float) -> None:
        """Return once authenticated; raise ConnectionUnavailable with the reason after `timeout`."""
        if self.terminal is not None:
            raise TerminalClose(self.terminal_text())
        try:
            await asyncio.wait_for(self._wait_open_or_terminal(), timeout)
        except TimeoutError:
            reason = f" (last error: {self.last_error})" if self.last_error else ""
            raise ConnectionUnavailable(
                f"not connected to the broker at {self.mesh.broker_url} within {timeout:g}s{reason}"
            ) from None
        if self.terminal is not None:
            raise TerminalClose(self.terminal_text())
        if self.unreachable:
            raise ConnectionUnavailable(f"cannot reach the broker at {self.mesh.broker_url}: {self.last_error}")
        if not self.is_open:
            raise ConnectionUnavailable(f"broker at {self.mesh.broker_url} refused this identity ({self.last_error})")

    async def _wait_open_or_terminal(self) -> None:
        while (not self._open.is_set() and self.terminal is None and not self._closing and not self.hello_rejected
               and not self.unreachable):
            self._changed.clear()
            await self._changed.wait()

    def terminal_text(self) -> str:
        code, reason = self.terminal or (0, "")
        return f"{TERMINAL_CLOSE_CODES.get(code, 'closed by broker')} ({code}{': ' + reason if reason else ''})"

    def _notify_change(self) -> None:
        self._changed.set()

    async def _run(self) -> None:
        while not self._closing and self.terminal is None:
            self.state = "connecting"
            try:
                await self._connect_once()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # every failure is retried, the reason kept for callers
                rejected = isinstance(exc, _HelloRejected)
                retry_after = RETRY_HELLO_SECONDS.get(self._rejected_code or "") if rejected else None
                self.hello_rejected = rejected and retry_after is None
                self.last_error = self.last_error if rejected else describe_failure(exc)
                self.unreachable = self.options.fail_fast and unreachable(exc)
                _log(f"{self.mesh.slug}: connection failed: {self.last_error}")
                if retry_after is not None:
                    self._open.clear()
                    self._ws = None
                    await asyncio.sleep(random.uniform(retry_after / 2, retry_after))
                    continue
            self._open.clear()
            self._ws = None
            self._fail_requests(ConnectionUnavailable(f"connection to broker lost ({self.last_error or 'closed'})"))
            self._notify_change()
            if self._closing or self.terminal is not None or self.unreachable:
                break
            self.state = "reconnecting"
            base = BACKOFF_SECONDS[min(self._attempt, len(BACKOFF_SECONDS) - 1)]
            self._attempt += 1
            await asyncio.sleep(random.uniform(0, base))
        if self.terminal is not None:
            self._fail_everything(TerminalClose(self.terminal_text()))
        self.state = "closed"
        self._notify_change()

    async def _connect_once(self) -> None:
        async with connect(self.mesh.broker_url, open_timeout=10, max_size=2**22, close_timeout=2) as ws:
            early_pushes = await self._handshake(ws)
            self._ws = ws
            self.state = "open"
            self._attempt = 0
            self.last_error = None
            self.hello_rejected = False
            self._open.set()
            self._notify_change()
            _log(f"{self.mesh.slug}: open (deliveryAck={self.delivery_ack})")
            for frame in early_pushes:
                self._pushes.put_nowait(frame)
            await self._after_open()
            try:
                async for raw in ws:
                    self._dispatch(raw)
            except websockets.ConnectionClosed:
                pass
            self._record_close(ws)

    async def _handshake(self, ws: ClientConnection) -> list[dict[str, Any]]:
        hello = hello_frame(
            mesh_id=self.mesh.mesh_id,
            member_id=self.mesh.member_id,
            pubkey=self.mesh.pubkey,
            secret_hex=self.mesh.secret_key,
            session_id=self.options.session_id,
            pid=os.getpid(),
            cwd=self.options.cwd,
            sessionPubkey=self.session.public_hex,
            hostname=socket.gethostname(),
            peerType="ai",
            channel=self.options.channel,
            displayName=self.options.display_name or None,
            model=os.environ.get("CLAUDE_MODEL") or None,
            deliveryAck=True if self.options.want_delivery_ack else None,
            signedHooks=True,  # our hooks sign (peer/hook.py): unsigned ones must not touch this session
        )
        await ws.send(json.dumps(hello))
        self._rejected_code = None
        early: list[dict[str, Any]] = []
        refused = False
        loop = asyncio.get_running_loop()
        deadline = loop.time() + HELLO_TIMEOUT
        while True:
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise TimeoutError("no hello_ack within 5s")
            try:
                raw = await asyncio.wait_for(ws.recv(), remaining)
            except websockets.ConnectionClosed as exc:
                self._record_close(ws)
                if refused:
                    raise _HelloRejected(self.last_error) from None
                raise ConnectionError(f"broker closed the socket during hello ({exc})") from None
            frame = _parse(raw)
            if frame is None:
                continue
            kind = frame.get("type")
            if kind == "hello_ack":
                self.hello_ack = frame
                self.delivery_ack = bool(frame.get("deliveryAck")) and self.options.want_delivery_ack
                return early
            if kind == "error":
                code = str(frame.get("code") or "error")
                self._rejected_code = code
                self.last_error = f"hello rejected: {code}: {frame.get('message') or ''}".rstrip(": ")
                refused = True
                if code == "revoked":
                    self.terminal = (4002, str(frame.get("message") or "revoked"))
                # keep reading: the close frame that follows tells us whether it is terminal
                continue
            if kind == "push":
                early.append(frame)

    def _record_close(self, ws: ClientConnection) -> None:
        code = ws.close_code
        reason = ws.close_reason or ""
        if code in TERMINAL_CLOSE_CODES:
            self.terminal = (code, reason)
        elif code is not None and code != 1000 and not self.last_error:
            self.last_error = f"closed by broker ({code}{': ' + reason if reason else ''})"

    async def _after_open(self) -> None:
        # Groups are per connection on the broker, so every (re)connect joins the configured ones again.
        for group in self.options.groups:
            await self._write({"type": "join_group", **group})
        for pending in list(self._sends.values()):
            # Unwritten sends go out now; written ones only when the broker dedups by clientMessageId.
            if not pending.written or self.delivery_ack:
                await self._write_send(pending)

    # --- inbound ------------------------------------------------------------------------------------------

    def _dispatch(self, raw: str | bytes) -> None:
        frame = _parse(raw)
        if frame is None:
            return
        kind = frame.get("type")
        if kind in ("push", "state_change"):  # unsolicited, handled in arrival order
            self._pushes.put_nowait(frame)
            return
        if kind == "ack" and not isinstance(frame.get("_reqId"), str):  # a send's (`forget` answers one too)
            pending = self._sends.get(str(frame.get("id") or ""))
            if pending is not None and not pending.future.done():
                pending.future.set_result(frame)
            return
        if kind == "error":
            self._dispatch_error(frame)
            return
        request = self._match_request(frame)
        if request is not None and not request.future.done():
            request.future.set_result(frame)

    def _match_request(self, frame: dict[str, Any]) -> _PendingRequest | None:
        req_id = frame.get("_reqId")
        if isinstance(req_id, str) and req_id in self._requests:
            return self._requests[req_id]
        kind = frame.get("type")
        return next((r for r in self._requests.values() if kind in r.reply_types and not r.future.done()), None)

    def _dispatch_error(self, frame: dict[str, Any]) -> None:
        code = str(frame.get("code") or "error")
        message = str(frame.get("message") or "")
        if code == "revoked":
            self.terminal = (4002, message)
        for key in (frame.get("_reqId"), frame.get("id")):
            if not isinstance(key, str) or not key:
                continue
            if key in self._requests and not self._requests[key].future.done():
                self._requests[key].future.set_exception(RequestFailed(code, message))
                return
            if key in self._sends and not self._sends[key].future.done():
                self._sends[key].future.set_exception(RequestFailed(code, message))
                return
        _log(f"{self.mesh.slug}: unmatched error {code}: {message}")

    async def _consume_pushes(self) -> None:
        """Handle pushes one at a time in arrival order, then confirm them (at-least-once)."""
        while True:
            frame = await self._pushes.get()
            try:
                if self.on_push is not None:
                    await self.on_push(frame)
            except Exception as exc:  # a handler bug must not stop delivery of the next message
                print(f"[claudemesh] push handler failed: {exc!r}", file=sys.stderr, flush=True)
                continue
            message_id = frame.get("messageId")
            if self.delivery_ack and message_id and frame.get("subtype") != "system":
                with contextlib.suppress(Exception):
                    await self._write({"type": "push_ack", "messageIds": [message_id]})

    # --- outbound -----------------------------------------------------------------------------------------

    async def _write(self, frame: dict[str, Any]) -> None:
        ws = self._ws
        if ws is None or not self._open.is_set():
            raise ConnectionUnavailable("not connected")
        async with self._write_lock:
            await ws.send(json.dumps(frame))

    async def _write_send(self, pending: _PendingSend) -> None:
        frame = dict(pending.frame)
        if self.delivery_ack:
            frame["clientMessageId"] = frame["id"]
        try:
            await self._write(frame)
        except (ConnectionUnavailable, websockets.ConnectionClosed):
            return  # re-sent after the next hello_ack
        pending.written = True

    async def send(self, target_spec: str, envelope: WireEnvelope, *, priority: str = "next",
                   timeout: float = SEND_TIMEOUT) -> dict[str, Any]:
        """Send one message; returns the broker's `ack` (raises RequestFailed when it refused)."""
        if self.terminal is not None:
            raise TerminalClose(self.terminal_text())
        if len(self._sends) >= MAX_PENDING_SENDS:
            raise ConnectionUnavailable("outbound queue full")
        client_id = secrets.token_hex(8)
        frame = {
            "type": "send",
            "id": client_id,
            "targetSpec": target_spec,
            "priority": priority,
            "nonce": envelope.nonce,
            "ciphertext": envelope.ciphertext,
        }
        pending = _PendingSend(frame=frame, future=asyncio.get_running_loop().create_future())
        self._sends[client_id] = pending
        try:
            if self.is_open:
                await self._write_send(pending)
            try:
                ack = await asyncio.wait_for(asyncio.shield(pending.future), timeout)
            except TimeoutError:
                if not pending.written:
                    reason = f" (last error: {self.last_error})" if self.last_error else ""
                    raise ConnectionUnavailable(
                        f"not connected to the broker within {timeout:g}s, message not sent{reason}"
                    ) from None
                raise ConnectionUnavailable(f"no ack from the broker within {timeout:g}s") from None
        finally:
            self._sends.pop(client_id, None)  # a timed-out send is never written later (no ghost sends)
        if ack.get("queued") is False:
            raise RequestFailed("rejected", str(ack.get("error") or "broker rejected send"))
        return ack

    async def request(self, frame: dict[str, Any], reply_types: str | tuple[str, ...],
                      timeout: float = REQUEST_TIMEOUT) -> dict[str, Any]:
        """Write `frame` with a fresh `_reqId` and wait for the matching reply."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        await self.wait_open(timeout)
        req_id = _new_req_id()
        types = (reply_types,) if isinstance(reply_types, str) else tuple(reply_types)
        pending = _PendingRequest(reply_types=types, future=loop.create_future(), req_id=req_id)
        self._requests[req_id] = pending
        try:
            await self._write({**frame, "_reqId": req_id})
            remaining = max(0.1, deadline - loop.time())
            try:
                return await asyncio.wait_for(asyncio.shield(pending.future), remaining)
            except TimeoutError:
                raise ConnectionUnavailable(f"no reply to {frame.get('type')} within {timeout:g}s") from None
        finally:
            self._requests.pop(req_id, None)

    async def fire(self, frame: dict[str, Any], timeout: float = REQUEST_TIMEOUT) -> None:
        """A frame that gets no reply (set_status, set_summary, …)."""
        await self.wait_open(timeout)
        await self._write(frame)

    # --- failure fan-out ----------------------------------------------------------------------------------

    def _fail_requests(self, exc: Exception) -> None:
        for pending in list(self._requests.values()):
            if not pending.future.done():
                pending.future.set_exception(exc)

    def _fail_everything(self, exc: Exception) -> None:
        self._fail_requests(exc)
        for pending in list(self._sends.values()):
            if not pending.future.done():
                pending.future.set_exception(exc)


class _HelloRejected(Exception):
    pass


def _parse(raw: str | bytes) -> dict[str, Any] | None:
    try:
        frame = json.loads(raw)
    except (TypeError, ValueError):
        return None
    return frame if isinstance(frame, dict) else None
