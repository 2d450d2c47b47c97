"""`send` → `ack` (+ pushes), `push_ack`, `message_status` (protocol.md §3, docs/wire-extensions.md)."""

from __future__ import annotations

from channels.db import database_sync_to_async

from broker import conf, metrics, wire
from broker.handlers import handler
from broker.ratelimit import send_limit_text
from broker.services import messaging
from meshes.text import storable


@handler("send")
async def handle_send(peer, frame) -> None:
    send_id = frame.get("id") if isinstance(frame.get("id"), str) else ""
    node = peer.node
    if not node.send_allowed_locally(peer.member_id):
        burst, per_min = conf.send_rate()
        metrics.messages_rejected.labels("rate_limit").inc()
        await peer.send_frame(wire.send_ack(send_id, "", send_limit_text(burst, per_min)))
        return
    try:
        item = messaging.check_send(frame, peer.sender())
    except messaging.SendRejected as rejected:
        metrics.messages_rejected.labels(rejected.reason).inc()
        await peer.send_frame(wire.send_ack(send_id, "", rejected.text))
        return
    # Not awaited: the ack goes out after the batch commits, so a sender can pipeline sends.
    node.submit_send(peer, item, send_id)


@handler("push_ack")
async def handle_push_ack(peer, frame) -> None:
    ids = frame.get("messageIds")
    if isinstance(ids, str):
        ids = [ids]
    if not isinstance(ids, list):
        return
    # Ids the database cannot take (NUL, lone surrogates) would fail the whole batch of delivery marks.
    ids = [i for i in ids if isinstance(i, str) and 0 < len(i) <= 64 and storable(i)][:1000]
    if ids:
        peer.acknowledge(ids)


@handler("message_status")
async def handle_message_status(peer, frame) -> None:
    message_id = frame.get("messageId")
    result = None  # an id no row can have (NUL, lone surrogate) is simply not found
    if not isinstance(message_id, str) or storable(message_id):
        result = await database_sync_to_async(messaging.message_status)(mesh_id=peer.mesh_id, message_id=message_id)
    if result is None:
        await peer.send_frame(wire.error("not_found", "message not found", frame))
        return
    await peer.send_frame(wire.with_req_id({"type": "message_status_result", **result}, frame))
