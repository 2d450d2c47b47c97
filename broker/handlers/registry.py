"""Message-type registry: one `handle_<type>` coroutine per wire type (registered by the feature modules of
this package), dispatch by name, and how a handler's failure reaches the client."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from channels.db import database_sync_to_async

from broker import metrics, wire
from meshes import selectors as mesh_selectors
from meshes.actors import Actor
from meshes.errors import MeshError

logger = logging.getLogger(__name__)

Handler = Callable[[Any, dict[str, Any]], Awaitable[None]]
HANDLERS: dict[str, Handler] = {}
PRE_HELLO = {"hello"}


def handler(message_type: str):
    def register(fn: Handler) -> Handler:
        HANDLERS[message_type] = fn
        return fn

    return register


async def dispatch(conn, frame: dict[str, Any]) -> None:
    message_type = frame.get("type")
    if not conn.authenticated and not (isinstance(message_type, str) and message_type in PRE_HELLO):
        await conn.send_frame(wire.error("no_hello", "must send hello first"))
        return
    fn = HANDLERS.get(message_type) if isinstance(message_type, str) else None
    if fn is None:
        # [PY] §0: answer unknown types so clients fail fast instead of timing out.
        await conn.send_frame(wire.error("unknown_type", f"unsupported message type: {message_type!r}", frame))
        return
    try:
        await fn(conn, frame)
    except Exception:
        logger.exception("handler for %s failed", message_type)
        if message_type == "send":
            metrics.messages_rejected.labels("parse_or_handler").inc()
            send_id = frame.get("id") if isinstance(frame.get("id"), str) else ""
            await conn.send_frame(wire.send_ack(send_id, "", "internal error"))
        else:
            await conn.send_frame(wire.error("internal", "the broker could not handle this request", frame))


async def call_for_member(conn, frame: dict[str, Any], fn: Callable[[Actor, dict[str, Any]], Any], *,
                          answer_errors: bool = True) -> Any | None:
    """Run `fn(actor, frame)` in the DB thread for the connection's member, re-read now (a role change or a
    revocation applies to the very next request). Its MeshError goes back as an `error` with the `_reqId` (unless
    `answer_errors` is False: a frame nobody waits on), and the result is None; otherwise the result is the
    caller's to answer with."""

    def run() -> Any:
        return fn(mesh_selectors.actor_for_member(member_id=conn.member_id), frame)

    try:
        return await database_sync_to_async(run)()
    except MeshError as exc:
        if answer_errors:
            await conn.send_frame({**exc.extra, **wire.error(exc.code, exc.message, frame)})
        return None


async def run_for_member(conn, frame: dict[str, Any], fn: Callable[[Actor, dict[str, Any]], dict[str, Any]]) -> None:
    """`call_for_member` whose result is the reply frame (it gets the `_reqId`)."""
    reply = await call_for_member(conn, frame, fn)
    if reply is not None:
        await conn.send_frame(wire.with_req_id(reply, frame))
