"""`send` → `ack` (+ pushes), `push_ack`, `message_status` (protocol.md §3, docs/wire-extensions.md)."""

from __future__ import annotations

from channels.db import database_sync_to_async

from broker import metrics, selectors, wire
from broker.handlers.registry import handler
from broker.services.routing import SendRejected
from broker.services.sending import check_send
from broker.worker import get_worker
from meshes.errors import ServiceError
from meshes.text import storable

MAX_ACKED_IDS = 1000


@handler("send")
async def handle_send(conn, frame) -> None:
    send_id = frame.get("id") if isinstance(frame.get("id"), str) else ""
    sends = get_worker().sends
    refusal = sends.refused_locally(conn.member_id)
    if refusal is not None:
        metrics.messages_rejected.labels("rate_limit").inc()
        await conn.send_frame(wire.send_ack(send_id, "", refusal))
        return
    try:
        item = check_send(frame, conn.sender())
    except SendRejected as rejected:
        metrics.messages_rejected.labels(rejected.reason).inc()
        await conn.send_frame(wire.send_ack(send_id, "", rejected.text))
        return
    # The ack goes out after the batch commits, so a sender can pipeline sends, up to a bound: past it this socket
    # is not read until some are answered.
    await conn.wait_for_send_slot()
    if conn.closed:
        return
    sends.submit(conn, item, send_id)


@handler("push_ack")
async def handle_push_ack(conn, frame) -> None:
    ids = frame.get("messageIds")
    if isinstance(ids, str):
        ids = [ids]
    if not isinstance(ids, list):
        return
    # Ids the database cannot take (NUL, lone surrogates) would fail the whole batch of delivery marks.
    ids = [i for i in ids if isinstance(i, str) and 0 < len(i) <= 64 and storable(i)][:MAX_ACKED_IDS]
    if ids:
        conn.acknowledge(ids)


def _message_status(mesh_id: str, message_ref: object) -> selectors.MessageStatus | None:
    message_id = selectors.message_id_for_ref(mesh_id=mesh_id, message_ref=message_ref)
    return selectors.message_status(mesh_id=mesh_id, message_id=message_id) if message_id else None


@handler("message_status")
async def handle_message_status(conn, frame) -> None:
    """By full id or (additive) a unique prefix of at least 6 characters."""
    try:
        status = await database_sync_to_async(_message_status)(conn.mesh_id, frame.get("messageId"))
    except ServiceError as exc:  # a prefix several messages start with
        await conn.send_frame(wire.error(exc.code, exc.message, frame))
        return
    if status is None:
        await conn.send_frame(wire.error("not_found", "message not found", frame))
        return
    await conn.send_frame(wire.with_req_id(wire.message_status_result(status), frame))
