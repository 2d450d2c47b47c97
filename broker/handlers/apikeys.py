"""`apikey_create/list/revoke` (protocol.md §5.2) through meshes.services, owners/admins only ([PY] §10 item 9)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from channels.db import database_sync_to_async

from broker import wire
from broker.handlers import handler
from meshes import selectors as mesh_selectors
from meshes import services as mesh_services
from meshes.actors import Actor
from meshes.errors import ServiceError
from meshes.models import Member
from protocol.encoding import iso_ms


def actor_for_peer(peer) -> Actor:
    """Re-read the member each time: a role change or revocation applies to the very next request."""
    member = Member.objects.select_related("mesh", "user").get(pk=peer.member_id)
    if member.revoked_at is not None:
        raise ServiceError("forbidden", "you are no longer a member of this mesh")
    return Actor(mesh=member.mesh, member=member, via="broker")


def _parse_expiry(value: Any) -> datetime | None:
    if value in (None, ""):
        return None
    if not isinstance(value, str):
        raise ServiceError("invalid_args", "expiresAt must be an ISO date")
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ServiceError("invalid_args", "expiresAt must be an ISO date") from None
    # No offset ("2030-01-01", as `claudemesh apikey create --expires` passes it through): UTC, as JavaScript's
    # Date reads a date-only ISO string in the reference; comparing it with an aware now() would raise.
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _key_entry(key) -> dict[str, Any]:
    return {
        "id": key.id,
        "label": key.label,
        "prefix": key.secret_prefix,
        "capabilities": key.capabilities,
        "topicScopes": key.topic_scopes,
        "createdAt": iso_ms(key.created_at),
        "lastUsedAt": wire.iso_or_none(key.last_used_at),
        "revokedAt": wire.iso_or_none(key.revoked_at),
        "expiresAt": wire.iso_or_none(key.expires_at),
    }


def apikey_create_sync(peer, frame) -> dict[str, Any]:
    actor = actor_for_peer(peer)
    actor.require_manager()
    label, capabilities = frame.get("label"), frame.get("capabilities")
    if not isinstance(label, str) or not label.strip() or not isinstance(capabilities, list) or not capabilities:
        raise ServiceError("invalid_args", "label and at least one capability required")
    key, secret = mesh_services.api_key_create(
        actor=actor,
        label=label,
        capabilities=capabilities,
        expires_at=_parse_expiry(frame.get("expiresAt")),
        topic_scopes=frame.get("topicScopes"),
    )
    return {
        "type": "apikey_created",
        "id": key.id,
        "secret": secret,
        "label": key.label,
        "prefix": key.secret_prefix,
        "capabilities": key.capabilities,
        "topicScopes": key.topic_scopes,
        "createdAt": iso_ms(key.created_at),
    }


def apikey_list_sync(peer, frame) -> dict[str, Any]:
    actor = actor_for_peer(peer)
    actor.require_manager()
    return {"type": "apikey_list_response", "keys": [_key_entry(k) for k in mesh_selectors.api_keys_for_mesh(mesh=actor.mesh)]}


def apikey_revoke_sync(peer, frame) -> dict[str, Any]:
    actor = actor_for_peer(peer)
    actor.require_manager()
    if not isinstance(frame.get("id"), str) or not frame["id"]:
        raise ServiceError("invalid_args", "id required")
    outcome = mesh_services.api_key_revoke(actor=actor, key_ref=frame["id"])
    return {"type": "apikey_revoke_response", **outcome.as_wire()}


async def run_service(peer, frame, fn) -> None:
    """Run a meshes service for the connected member; ServiceError → `error` with the request's `_reqId`."""
    try:
        reply = await database_sync_to_async(fn)(peer, frame)
    except ServiceError as exc:
        await peer.send_frame(wire.error(exc.code, exc.message, frame))
        return
    await peer.send_frame(wire.with_req_id(reply, frame))


@handler("apikey_create")
async def handle_apikey_create(peer, frame) -> None:
    await run_service(peer, frame, apikey_create_sync)


@handler("apikey_list")
async def handle_apikey_list(peer, frame) -> None:
    await run_service(peer, frame, apikey_list_sync)


@handler("apikey_revoke")
async def handle_apikey_revoke(peer, frame) -> None:
    await run_service(peer, frame, apikey_revoke_sync)
