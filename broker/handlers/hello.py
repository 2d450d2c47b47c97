"""`hello` → `hello_ack` or a handshake error and close (protocol.md §2.2–2.7)."""

from __future__ import annotations

import time

from channels.db import database_sync_to_async

from broker import metrics, wire
from broker.handlers.keyring import send_open_requests
from broker.handlers.registry import handler
from broker.services import handshake, presence
from broker.services.hello_replay import hello_use_once
from broker.worker import get_worker


@handler("hello")
async def handle_hello(conn, frame) -> None:
    if conn.authenticated:  # [PY] §10 item 14: a second hello is refused, the socket keeps its identity
        await conn.send_frame(wire.error("already_authenticated", "hello already accepted on this socket", frame))
        return
    worker = get_worker()
    try:
        handshake.check_session_pubkey(frame)  # step 1 needs no read: refuse it before the lookup (check_hello repeats it)
        lookup = await database_sync_to_async(handshake.hello_lookup)(
            mesh_id=frame.get("meshId"), pubkey=frame.get("pubkey"), session_id=frame.get("sessionId")
        )
        hello = handshake.check_hello(frame=frame, lookup=lookup, now_ms=int(time.time() * 1000))
        await database_sync_to_async(hello_use_once)(signature=frame["signature"])
        opened = await database_sync_to_async(presence.presence_open)(
            hello=hello, member=lookup.member, worker_id=worker.worker_id, ip=conn.ip
        )
    except handshake.HandshakeRejected as rejected:
        metrics.connections_rejected.labels(rejected.code).inc()
        await conn.send_frame(wire.error(rejected.code, rejected.message))
        await conn.close(rejected.close_code, rejected.reason)
        return
    if conn.closed:  # the client went away during the handshake
        await database_sync_to_async(presence.presence_close)(presence_id=opened.presence.id)
        return
    conn.authenticate(opened.presence)
    worker.registry.register(conn)
    for presence_id, worker_id in opened.replaced:
        await worker.fanout.kick(presence_id, worker_id, 1000, "session_replaced")
    await conn.send_frame(opened.ack)
    await worker.fanout.broadcast(conn.mesh_id, opened.join_event, exclude_member_id=conn.member_id)
    conn.request_drain()  # queued and unacknowledged messages (§2.5 step 8, after the ack as [PY] recommends)
    await send_open_requests(conn)
