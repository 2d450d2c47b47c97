"""The `/ws` consumer: size check, JSON parse, dispatch by `type`. Everything else lives in handlers/, the
worker's parts and services/. Frames of one socket are handled one at a time, in arrival order (protocol.md §2.7 [PY]).
"""

from __future__ import annotations

import asyncio
import json
import logging

from channels.consumer import get_handler_name
from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings
from django.http.request import split_domain_port, validate_host

from broker import conf, metrics, wire
from broker.handlers.registry import dispatch
from broker.worker import get_worker

logger = logging.getLogger(__name__)


class BrokerConsumer(AsyncWebsocketConsumer):
    # No per-socket channel: cross-worker traffic goes through the worker's one channel (broker/layer.py).
    channel_layer_alias = "__broker_no_per_socket_channel__"

    async def __call__(self, scope, receive, send):
        # With one message source a plain loop does what Channels' await_many_dispatch does, without its new
        # task and asyncio.wait per frame (≈15 % of the event loop in a burst profile).
        self.scope = scope
        self.channel_layer = None
        self.base_send = send
        try:
            while True:
                await self.dispatch(await receive())
        except StopConsumer:
            pass

    async def dispatch(self, message):
        # Channels closes stale DB connections before every frame (a thread hop); our DB calls do it already.
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)

    async def connect(self):
        worker = get_worker()
        await worker.ensure_started()
        client = self.scope.get("client") or ("unknown", 0)
        ip = str(client[0])
        self.conn = worker.connection(send=self.base_send, close_socket=self.close, ip=ip, origin=self._origin())
        if not worker.registry.admit_ip(ip):
            self.conn.closed = True  # never admitted: nothing to release when it goes
            metrics.connections_rejected.labels("ip_capacity").inc()
            await self.accept()
            await self.send(text_data=wire.dumps(wire.error("capacity", "too many connections from this address")))
            await self.close(code=1008, reason="ip_capacity")
            return
        metrics.connections_total.inc()
        await self.accept()
        self._hello_timer = asyncio.get_running_loop().call_later(conf.hello_timeout_seconds(), self._hello_timeout)

    def _origin(self) -> str | None:
        host = dict(self.scope.get("headers") or []).get(b"host", b"").decode("latin-1")
        if not host or not validate_host(split_domain_port(host)[0], settings.ALLOWED_HOSTS):
            return None
        scheme = "https" if self.scope.get("scheme") == "wss" else "http"
        return f"{scheme}://{host}"

    def _hello_timeout(self) -> None:
        if not self.conn.authenticated and not self.conn.closed:
            asyncio.ensure_future(self.conn.close(1008, "no_hello"))

    async def receive(self, text_data=None, bytes_data=None):
        if self.conn.closed:
            return
        raw = text_data if text_data is not None else bytes_data
        if raw is None:
            return
        limit = conf.max_message_bytes()
        # UTF-8 is at most 4 bytes a character: most frames are far below the limit without encoding them.
        if isinstance(raw, str) and len(raw) * 4 <= limit:
            size = 0
        else:
            size = len(raw.encode("utf-8")) if isinstance(raw, str) else len(raw)
        if size > limit:
            await self.conn.close(1009, "message too big")
            return
        try:
            frame = json.loads(raw)
        except (ValueError, UnicodeDecodeError, RecursionError):
            # not JSON (or nested past the parser's recursion limit): dropped silently, the socket stays open (§1.2)
            return
        if not isinstance(frame, dict):
            return
        self.conn.active = True
        await dispatch(self.conn, frame)

    async def disconnect(self, code):
        timer = getattr(self, "_hello_timer", None)
        if timer is not None:
            timer.cancel()
        conn = getattr(self, "conn", None)
        if conn is not None:
            await conn.on_closed()
