"""`kick`, `disconnect`, `ban`, `unban`, `list_bans` (protocol.md §5.3) and the grant frames `get_grants` /
`set_grants` (docs/wire-extensions.md). The rules live in the services; a kick's sockets are closed by the
workers holding them, through their normal disconnect path (§10 item 2), so `peer_left` goes out once."""

from __future__ import annotations

from typing import Any

from broker import wire
from broker.handlers.registry import call_for_member, handler, run_for_member
from broker.services.moderation import KickRequest, sessions_kick
from broker.worker import get_worker
from meshes import selectors as mesh_selectors
from meshes.actors import Actor
from meshes.services.grants import member_grants_update
from meshes.services.moderation import member_ban, member_unban


async def _kick(conn, frame: dict[str, Any], verb: str) -> None:
    def run(actor: Actor, frame: dict[str, Any]):
        return sessions_kick(actor=actor, request=KickRequest.from_frame(frame), verb=verb,
                             caller_presence_id=conn.presence_id)

    outcome = await call_for_member(conn, frame, run)
    if outcome is None:
        return
    names = outcome.names
    # Answer before closing: the caller may be among the targets.
    ack = "kick_ack" if verb == "kicked" else "disconnect_ack"
    await conn.send_frame(wire.with_req_id({"type": ack, "kicked": names, "affected": names}, frame))
    await get_worker().fanout.close_kicked(outcome)


@handler("kick")
async def handle_kick(conn, frame) -> None:
    await _kick(conn, frame, "kicked")


@handler("disconnect")
async def handle_disconnect(conn, frame) -> None:
    await _kick(conn, frame, "disconnected")


def _ban(actor: Actor, frame: dict[str, Any]) -> dict[str, Any]:
    return {"type": "ban_ack", "banned": member_ban(actor=actor, target=frame.get("target")).display_name}


def _unban(actor: Actor, frame: dict[str, Any]) -> dict[str, Any]:
    return {"type": "unban_ack", "unbanned": member_unban(actor=actor, target=frame.get("target")).display_name}


def _list_bans(actor: Actor, frame: dict[str, Any]) -> dict[str, Any]:
    return wire.bans_list(list(mesh_selectors.bans_for_manager(actor=actor)))


@handler("ban")
async def handle_ban(conn, frame) -> None:
    await run_for_member(conn, frame, _ban)


@handler("unban")
async def handle_unban(conn, frame) -> None:
    await run_for_member(conn, frame, _unban)


@handler("list_bans")
async def handle_list_bans(conn, frame) -> None:
    await run_for_member(conn, frame, _list_bans)


def _get_grants(actor: Actor, frame: dict[str, Any]) -> dict[str, Any]:
    return wire.grants_result(actor.member)


def _set_grants(actor: Actor, frame: dict[str, Any]) -> dict[str, Any]:
    member = member_grants_update(actor=actor, grants=frame.get("grants"), member_id=frame.get("memberId"))
    return wire.grants_result(member)


@handler("get_grants")
async def handle_get_grants(conn, frame) -> None:
    await run_for_member(conn, frame, _get_grants)


@handler("set_grants")
async def handle_set_grants(conn, frame) -> None:
    await run_for_member(conn, frame, _set_grants)
