"""Wire extensions `list_members`, `invite_create` and `member_rename` (docs/wire-extensions.md)."""

from __future__ import annotations

from typing import Any

from channels.db import database_sync_to_async

from broker import selectors, wire
from broker.handlers.registry import handler, run_for_member
from meshes import selectors as mesh_selectors
from meshes import services as mesh_services
from meshes import site
from meshes.actors import Actor
from meshes.models import Role

# Wire names of invite_create's optional fields → the service's arguments; absent ones take its defaults.
INVITE_FIELDS = {"maxUses": "max_uses", "expiresInDays": "expires_in_days"}


@handler("list_members")
async def handle_list_members(conn, frame) -> None:
    members = await database_sync_to_async(selectors.members_list)(mesh_id=conn.mesh_id)
    await conn.send_frame(wire.with_req_id(wire.members_list(members), frame))


def _invite_create(actor: Actor, frame: dict[str, Any]) -> dict[str, Any]:
    options = {argument: frame[name] for name, argument in INVITE_FIELDS.items() if name in frame}
    invite = mesh_services.invite_create(actor=actor, role=frame.get("role") or Role.MEMBER, **options)
    return wire.invite_created(invite, mesh_selectors.invite_links(invite=invite))


@handler("invite_create")
async def handle_invite_create(conn, frame) -> None:
    token = site.remember_origin(conn.origin)  # the invite announces the address this peer reached us by
    try:
        await run_for_member(conn, frame, _invite_create)
    finally:
        site.forget_origin(token)


def _member_rename(actor: Actor, frame: dict[str, Any]) -> dict[str, Any]:
    member_id = frame.get("memberId") or actor.member_id
    member = mesh_services.member_rename(actor=actor, member_id=member_id, name=frame.get("name"))
    return {"type": "member_renamed", "memberId": member.id, "displayName": member.display_name}


@handler("member_rename")
async def handle_member_rename(conn, frame) -> None:
    """Additive: a member's lasting name (its own, or anyone's for owners and admins)."""
    await run_for_member(conn, frame, _member_rename)
