"""`hello` → `hello_ack` or a handshake error and close (protocol.md §2.2–2.7)."""

from __future__ import annotations

import time

from channels.db import database_sync_to_async

from broker import metrics, wire
from broker.handlers import handler
from broker.services import presence as presence_services


@handler("hello")
async def handle_hello(peer, frame) -> None:
    if peer.authenticated:  # [PY] §10 item 14: a second hello is refused, the socket keeps its identity
        await peer.send_frame(wire.error("already_authenticated", "hello already accepted on this socket", frame))
        return
    node = peer.node
    try:
        presence_services.check_session_pubkey(frame)
        lookup = await database_sync_to_async(presence_services.hello_lookup)(
            mesh_id=frame.get("meshId"), pubkey=frame.get("pubkey")
        )
        hello = presence_services.check_hello(frame=frame, lookup=lookup, now_ms=int(time.time() * 1000))
        opened = await database_sync_to_async(presence_services.presence_open)(
            hello=hello, member=lookup.member, node_id=node.node_id
        )
    except presence_services.HandshakeRejected as rejected:
        metrics.connections_rejected.labels(rejected.code).inc()
        await peer.send_frame(wire.error(rejected.code, rejected.message))
        await peer.close(rejected.close_code, rejected.reason)
        return
    if peer.closed:  # the client went away during the handshake
        await database_sync_to_async(presence_services.presence_close)(presence_id=opened.presence.id)
        return
    peer.authenticate(opened.presence)
    node.register(peer)
    for presence_id, node_id in opened.replaced:
        await node.kick(presence_id, node_id, 1000, "session_replaced")
    await peer.send_frame(opened.ack)
    await node.broadcast(peer.mesh_id, opened.join_event, exclude_member_id=peer.member_id)
    peer.request_drain()  # queued and unacknowledged messages (§2.5 step 8, after the ack as [PY] recommends)
