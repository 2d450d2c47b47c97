"""`set_state`, `get_state`, `list_state` (protocol.md §5.4) and `mesh_info` (§5.6). `set_state` answers nothing
unless asked (`expectedVersion` or `confirm`, with a `_reqId`): the reference CLI would hand a `state_result` to the
next getter. Every other connection of the mesh hears `state_change`."""

from __future__ import annotations

from typing import Any

from broker import selectors, wire, wire_coordination
from broker.handlers.registry import call_for_member, handler, run_for_member
from broker.worker import get_worker
from meshes import selectors as mesh_selectors
from meshes import selectors_coordination, selectors_files
from meshes.services.state import NO_VALUE, state_clean_key, state_set
from protocol.vocabulary import Grant


def _set(actor, frame: dict[str, Any], session_pubkey: str | None):
    entry = state_set(actor=actor, key=frame.get("key"), value=frame.get("value", NO_VALUE),
                      sealed=frame.get("sealed"), expected_version=frame.get("expectedVersion"))
    readers = mesh_selectors.members_allowing(mesh_id=actor.mesh.id, sender_keys=(actor.member.pubkey, session_pubkey),
                                              capability=Grant.STATE_READ)
    return entry, readers


@handler("set_state")
async def handle_set_state(conn, frame) -> None:
    # [PY] §10 item 4: a refusal is answered when the frame has a `_reqId`; without one nothing waits for it.
    stored = await call_for_member(conn, frame, lambda actor, f: _set(actor, f, conn.session_pubkey),
                                   answer_errors="_reqId" in frame)
    if stored is None:
        return
    entry, readers = stored
    if "_reqId" in frame and ("expectedVersion" in frame or frame.get("confirm") is True):
        await conn.send_frame(wire.with_req_id(wire_coordination.state_stored(entry), frame))
    await get_worker().fanout.broadcast(
        conn.mesh_id, wire_coordination.state_change(entry), exclude_presence_id=conn.presence_id,
        only_member_ids=readers,  # recipients whose grants refuse this writer `state-read` do not hear it
    )


def _get(actor, frame: dict[str, Any]) -> dict[str, Any]:
    key = state_clean_key(frame.get("key"))
    return wire_coordination.state_result(key, selectors_coordination.state_get(mesh_id=actor.mesh.id, key=key))


@handler("get_state")
async def handle_get_state(conn, frame) -> None:
    await run_for_member(conn, frame, _get)


def _list(actor, frame: dict[str, Any]) -> dict[str, Any]:
    return wire_coordination.state_list(selectors_coordination.state_list(mesh_id=actor.mesh.id))


@handler("list_state")
async def handle_list_state(conn, frame) -> None:
    await run_for_member(conn, frame, _list)


def _mesh_info(conn, actor) -> dict[str, Any]:
    peers = selectors.live_in_mesh(mesh_id=actor.mesh.id)
    you = next((p for p in peers if p.id == conn.presence_id), None)
    return wire_coordination.mesh_info_result(
        mesh_id=actor.mesh.id, peers=peers, you=you,
        counts=selectors_coordination.coordination_counts(mesh_id=actor.mesh.id),
        file_count=selectors_files.files_count(mesh_id=actor.mesh.id),
    )


@handler("mesh_info")
async def handle_mesh_info(conn, frame) -> None:
    await run_for_member(conn, frame, lambda actor, _frame: _mesh_info(conn, actor))
