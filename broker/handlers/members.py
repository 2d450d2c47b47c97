"""Wire extensions `list_members` and `invite_create` (docs/wire-extensions.md)."""

from __future__ import annotations

from typing import Any

from channels.db import database_sync_to_async

from broker import selectors, wire
from broker.handlers import handler
from broker.handlers.apikeys import actor_for_peer, run_service
from meshes import selectors as mesh_selectors
from meshes import services as mesh_services
from meshes.models import Role
from protocol.encoding import iso_ms


@handler("list_members")
async def handle_list_members(peer, frame) -> None:
    members = await database_sync_to_async(selectors.members_list)(mesh_id=peer.mesh_id)
    await peer.send_frame(wire.with_req_id({"type": "members_list", "members": members}, frame))


def invite_create_sync(peer, frame) -> dict[str, Any]:
    actor = actor_for_peer(peer)
    actor.require_manager()
    invite = mesh_services.invite_create(
        actor=actor,
        role=frame.get("role") or Role.MEMBER,
        max_uses=frame.get("maxUses", 1),
        expires_in_days=frame.get("expiresInDays", 7),
    )
    links = mesh_selectors.invite_links(invite=invite)
    return {
        "type": "invite_created",
        "id": invite.id,
        "code": invite.code,
        "token": invite.token,
        "url": links["joinUrl"],
        "shortUrl": links["shortUrl"],
        "expiresAt": iso_ms(invite.expires_at),
    }


@handler("invite_create")
async def handle_invite_create(peer, frame) -> None:
    await run_service(peer, frame, invite_create_sync)
