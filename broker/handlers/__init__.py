"""Message-type registry: one `handle_<type>` coroutine per wire type, registered by feature modules."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from broker import metrics, wire

logger = logging.getLogger(__name__)

Handler = Callable[[Any, dict[str, Any]], Awaitable[None]]
HANDLERS: dict[str, Handler] = {}
PRE_HELLO = {"hello"}


def handler(message_type: str):
    def register(fn: Handler) -> Handler:
        HANDLERS[message_type] = fn
        return fn

    return register


async def dispatch(peer, frame: dict[str, Any]) -> None:
    message_type = frame.get("type")
    if not peer.authenticated and not (isinstance(message_type, str) and message_type in PRE_HELLO):
        await peer.send_frame(wire.error("no_hello", "must send hello first"))
        return
    fn = HANDLERS.get(message_type) if isinstance(message_type, str) else None
    if fn is None:
        # [PY] §0: answer unknown types so clients fail fast instead of timing out.
        await peer.send_frame(wire.error("unknown_type", f"unsupported message type: {message_type!r}", frame))
        return
    try:
        await fn(peer, frame)
    except Exception:
        logger.exception("handler for %s failed", message_type)
        if message_type == "send":
            metrics.messages_rejected.labels("parse_or_handler").inc()
            send_id = frame.get("id") if isinstance(frame.get("id"), str) else ""
            await peer.send_frame(wire.send_ack(send_id, "", "internal error"))
        else:
            await peer.send_frame(wire.error("internal", "the broker could not handle this request", frame))


from broker.handlers import apikeys, hello, members, messaging, presence  # noqa: E402, F401  (registration)
