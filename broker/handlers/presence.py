"""Presence and status messages (protocol.md §4.2–4.9). Replies (or their absence) exactly as specified; what a
field may hold is `broker.presence_fields`' rule."""

from __future__ import annotations

from channels.db import database_sync_to_async

from broker import presence_fields, selectors, wire
from broker.handlers.registry import handler
from broker.models import StatusSource
from broker.services import presence, status
from broker.worker import get_worker


def _db(fn):
    return database_sync_to_async(fn)


@handler("list_peers")
async def handle_list_peers(conn, frame) -> None:
    peers = await _db(selectors.peers_list)(mesh_id=conn.mesh_id, viewer_member_pubkey=conn.member_pubkey)
    await conn.send_frame(wire.with_req_id(wire.peers_list(peers), frame))


@handler("set_status")
async def handle_set_status(conn, frame) -> None:
    try:
        value = status.check_status(frame.get("status"))
    except ValueError as exc:
        if "_reqId" in frame:  # [PY] §10 item 4; without a _reqId stay silent like the reference
            await conn.send_frame(wire.error("invalid_args", str(exc), frame))
        return
    await _db(status.presence_set_status)(presence_id=conn.presence_id, status=value, source=StatusSource.MANUAL)
    conn.request_drain()  # leaving dnd may release held messages


@handler("set_summary")
async def handle_set_summary(conn, frame) -> None:
    summary = presence_fields.clean_summary(frame.get("summary"))
    if summary is None:  # text the database refuses is ignored, like the other invalid presence updates
        return
    await _db(presence.presence_update)(presence_id=conn.presence_id, summary=summary)


@handler("set_visible")
async def handle_set_visible(conn, frame) -> None:
    visible = bool(frame.get("visible"))
    conn.visible = visible
    await _db(presence.presence_update)(presence_id=conn.presence_id, visible=visible)
    event = wire.system_push(
        conn.mesh_id, "peer_visible" if visible else "peer_hidden", {"name": conn.display_name, "pubkey": conn.routing_pubkey}
    )
    await conn.send_frame(wire.request_ack(frame))
    await get_worker().fanout.broadcast(conn.mesh_id, event, exclude_presence_id=conn.presence_id)


@handler("set_profile")
async def handle_set_profile(conn, frame) -> None:
    conn.profile = presence_fields.profile_updated(conn.profile, frame)
    await _db(presence.presence_update)(presence_id=conn.presence_id, profile=conn.profile)
    await conn.send_frame(wire.request_ack(frame))


@handler("set_stats")
async def handle_set_stats(conn, frame) -> None:
    stats = presence_fields.clean_stats(frame.get("stats"))
    if stats is not None:
        await _db(presence.presence_update)(presence_id=conn.presence_id, stats=stats)


@handler("join_group")
async def handle_join_group(conn, frame) -> None:
    groups = presence_fields.group_joined(conn.groups, name=frame.get("name"), role=frame.get("role"))
    if groups is not None:
        conn.groups = groups
        await _db(presence.presence_update)(presence_id=conn.presence_id, groups=groups)


@handler("leave_group")
async def handle_leave_group(conn, frame) -> None:
    groups = presence_fields.group_left(conn.groups, name=frame.get("name"))
    if groups is not None:
        conn.groups = groups
        await _db(presence.presence_update)(presence_id=conn.presence_id, groups=groups)
