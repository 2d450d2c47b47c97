"""`key_get`, `key_put`, `key_request` (docs/wire-extensions.md "Keyring"): the broker relays requests to holders
as pushes and stores their answers; the rules live in `services.keyring`, the reads in `selectors_keyring`."""

from __future__ import annotations

from typing import Any

from channels.db import database_sync_to_async

from broker import selectors_keyring, wire, wire_keyring
from broker.handlers.registry import call_for_member, handler, run_for_member
from broker.services import keyring
from broker.worker import get_worker
from meshes.actors import Actor
from meshes.errors import Forbidden


def _member(actor: Actor):
    if actor.member is None or not actor.member.pubkey:
        raise Forbidden("forbidden", "only a member with a key holds scope keys")
    return actor.member


def _get(actor: Actor, frame: dict[str, Any]) -> dict[str, Any]:
    member, scope = _member(actor), frame.get("scope")
    selectors_keyring.require_scope_members(mesh_id=member.mesh_id, scope=scope)  # its own old wraps: no membership
    return wire_keyring.key_list(selectors_keyring.key_listing(mesh_id=member.mesh_id, member_id=member.id, scope=scope))


@handler("key_get")
async def handle_key_get(conn, frame) -> None:
    await run_for_member(conn, frame, _get)


def _put(actor: Actor, frame: dict[str, Any]) -> keyring.KeyPutOutcome:
    return keyring.key_put(
        member=_member(actor), scope=frame.get("scope"), epoch=frame.get("epoch"), wraps=frame.get("wraps"),
        create=frame.get("create") is True,
    )


@handler("key_put")
async def handle_key_put(conn, frame) -> None:
    outcome = await call_for_member(conn, frame, _put)
    if outcome is None:
        return
    scope, epoch = frame["scope"], frame["epoch"]
    await conn.send_frame(wire.with_req_id(wire_keyring.key_stored(scope, epoch, outcome), frame))
    if outcome.granted:
        event = wire_keyring.key_granted(conn.mesh_id, scope=scope, epoch=epoch)
        await get_worker().fanout.broadcast(conn.mesh_id, event, only_member_ids=outcome.granted)


def _request(actor: Actor, frame: dict[str, Any]) -> tuple[keyring.KeyRequestOutcome, int]:
    outcome = keyring.key_request(member=_member(actor), scope=frame.get("scope"))
    return outcome, selectors_keyring.members_online(mesh_id=actor.mesh.id, member_ids=outcome.holders)


@handler("key_request")
async def handle_key_request(conn, frame) -> None:
    result = await call_for_member(conn, frame, _request)
    if result is None:
        return
    outcome, online = result
    scope = frame["scope"]
    await conn.send_frame(
        wire.with_req_id(wire_keyring.key_request_ack(scope, holders=len(outcome.holders), online=online), frame)
    )
    if outcome.holders and outcome.notify:
        event = wire_keyring.key_requested(conn.mesh_id, scope=scope, member_id=conn.member_id, pubkey=conn.member_pubkey)
        await get_worker().fanout.broadcast(conn.mesh_id, event, only_member_ids=outcome.holders)


async def send_open_requests(conn) -> None:
    """After a hello: the requests this member can answer that waited while it was away."""
    requests = await database_sync_to_async(selectors_keyring.requests_for_holder)(
        mesh_id=conn.mesh_id, member_id=conn.member_id
    )
    for scope, member_id, pubkey in requests:
        await conn.send_frame(wire_keyring.key_requested(conn.mesh_id, scope=scope, member_id=member_id, pubkey=pubkey))
