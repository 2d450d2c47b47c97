"""`apikey_create/list/revoke` (protocol.md §5.2) through meshes' services and selectors, which hold the
rules (owners and admins only, [PY] §10 item 9; label, capability and expiry checks)."""

from __future__ import annotations

from typing import Any

from broker import wire
from broker.handlers.registry import handler, run_for_member
from meshes import selectors as mesh_selectors
from meshes import services as mesh_services
from meshes.actors import Actor


def _create(actor: Actor, frame: dict[str, Any]) -> dict[str, Any]:
    key, secret = mesh_services.api_key_create(
        actor=actor,
        label=frame.get("label"),
        capabilities=frame.get("capabilities"),
        expires_at=frame.get("expiresAt"),
        topic_scopes=frame.get("topicScopes"),
        member_id=frame.get("memberId"),
    )
    return wire.api_key_created(key, secret)


def _list(actor: Actor, frame: dict[str, Any]) -> dict[str, Any]:
    return wire.api_key_list_response(list(mesh_selectors.api_keys_for_manager(actor=actor)))


def _revoke(actor: Actor, frame: dict[str, Any]) -> dict[str, Any]:
    outcome = mesh_services.api_key_revoke(actor=actor, key_ref=frame.get("id"))
    return wire.api_key_revoke_response(outcome)


@handler("apikey_create")
async def handle_apikey_create(conn, frame) -> None:
    await run_for_member(conn, frame, _create)


@handler("apikey_list")
async def handle_apikey_list(conn, frame) -> None:
    await run_for_member(conn, frame, _list)


@handler("apikey_revoke")
async def handle_apikey_revoke(conn, frame) -> None:
    await run_for_member(conn, frame, _revoke)
