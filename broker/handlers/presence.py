"""Presence and status messages (protocol.md §4.2–4.9). Replies (or their absence) exactly as specified."""

from __future__ import annotations

import math

from channels.db import database_sync_to_async

from broker import selectors, wire
from broker.handlers import handler
from broker.models import StatusSource
from broker.services import presence as presence_services
from meshes.text import storable

PROFILE_KEYS = ("avatar", "title", "bio", "capabilities")
STATS_KEYS = ("messagesIn", "messagesOut", "toolCalls", "uptime", "errors")


def _db(fn):
    return database_sync_to_async(fn)


def _stat_value(value) -> bool:
    """A counter the database can store: Python parses NaN/Infinity, JSON columns refuse them."""
    if isinstance(value, bool):
        return False
    return isinstance(value, int) or (isinstance(value, float) and math.isfinite(value))


@handler("list_peers")
async def handle_list_peers(peer, frame) -> None:
    peers = await _db(selectors.peers_list)(mesh_id=peer.mesh_id, viewer_member_pubkey=peer.member_pubkey)
    await peer.send_frame(wire.with_req_id({"type": "peers_list", "peers": peers}, frame))


@handler("set_status")
async def handle_set_status(peer, frame) -> None:
    try:
        status = presence_services.check_status(frame.get("status"))
    except ValueError as exc:
        if "_reqId" in frame:  # [PY] §10 item 4; without a _reqId stay silent like the reference
            await peer.send_frame(wire.error("invalid_args", str(exc), frame))
        return
    await _db(presence_services.presence_set_status)(
        presence_id=peer.presence_id, status=status, source=StatusSource.MANUAL
    )
    peer.request_drain()  # leaving dnd may release held messages


@handler("set_summary")
async def handle_set_summary(peer, frame) -> None:
    summary = frame.get("summary")
    summary = summary[:10_000] if isinstance(summary, str) else ""
    if not storable(summary):  # text the database refuses is ignored, like the other invalid presence updates
        return
    await _db(presence_services.presence_update)(presence_id=peer.presence_id, summary=summary)


@handler("set_visible")
async def handle_set_visible(peer, frame) -> None:
    visible = bool(frame.get("visible"))
    peer.visible = visible
    await _db(presence_services.presence_update)(presence_id=peer.presence_id, visible=visible)
    event = wire.system_push(
        peer.mesh_id, "peer_visible" if visible else "peer_hidden", {"name": peer.display_name, "pubkey": peer.routing_pubkey}
    )
    await peer.send_frame(wire.request_ack(frame))
    await peer.node.broadcast(peer.mesh_id, event, exclude_presence_id=peer.presence_id)


@handler("set_profile")
async def handle_set_profile(peer, frame) -> None:
    for key in PROFILE_KEYS:
        if key in frame:
            value = frame[key]
            if key == "capabilities":
                if isinstance(value, list):  # text the database cannot store is dropped, or it poisons peer.profile
                    peer.profile[key] = [str(v)[:100] for v in value if storable(str(v))][:50]
            elif isinstance(value, str) and storable(value):
                peer.profile[key] = value[:2000]
    await _db(presence_services.presence_update)(presence_id=peer.presence_id, profile=peer.profile)
    await peer.send_frame(wire.request_ack(frame))


@handler("set_stats")
async def handle_set_stats(peer, frame) -> None:
    stats = frame.get("stats")
    if not isinstance(stats, dict):
        return
    clean = {k: stats[k] for k in STATS_KEYS if _stat_value(stats.get(k))}
    await _db(presence_services.presence_update)(presence_id=peer.presence_id, stats=clean)


@handler("join_group")
async def handle_join_group(peer, frame) -> None:
    name = frame.get("name")
    if not isinstance(name, str) or not name.lstrip("@") or not storable(name):  # unstorable would poison peer.groups
        return
    name = name.lstrip("@")[:100]
    entry = {"name": name}
    if isinstance(frame.get("role"), str) and storable(frame["role"]):
        entry["role"] = frame["role"][:100]
    peer.groups = [g for g in peer.groups if g.get("name") != name] + [entry]
    await _db(presence_services.presence_update)(presence_id=peer.presence_id, groups=peer.groups)


@handler("leave_group")
async def handle_leave_group(peer, frame) -> None:
    name = frame.get("name")
    if not isinstance(name, str):
        return
    name = name.lstrip("@")
    peer.groups = [g for g in peer.groups if g.get("name") != name]
    await _db(presence_services.presence_update)(presence_id=peer.presence_id, groups=peer.groups)
