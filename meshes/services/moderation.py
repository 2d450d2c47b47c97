"""Bans (protocol.md §5.3): an owner or admin bans a member by name or key (its sockets close 4002 and its next
hello fails with `revoked`), and may lift the ban later. A ban is a revocation that remembers it was one, so the
ban list never shows members who were removed or who re-keyed."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from meshes.actors import Actor
from meshes.errors import Conflict, NotFound, ServiceError
from meshes.events import MeshEvent, MeshEventKind, publish_after_commit
from meshes.models import Member, Role
from meshes.services.checks import audit, require_live_mesh, require_moderator
from meshes.text import storable
from protocol.ids import is_id_fragment


def _clean_target(target: Any) -> str:
    if not isinstance(target, str) or not target.strip():
        raise ServiceError("invalid", "target required")
    target = target.strip()
    if not storable(target):
        raise NotFound("not_found", f'peer "{target}" not found')
    return target


def _one(members: list[Member], target: str, missing: str) -> Member:
    if not members:
        raise NotFound("not_found", missing)
    if len({m.id for m in members}) > 1:
        names = ", ".join(sorted(m.display_name for m in members)[:5])
        raise ServiceError("ambiguous", f'"{target}" matches {len(members)} members ({names}): give more of the key')
    return members[0]


@transaction.atomic
def member_ban(*, actor: Actor, target: Any = None, member_id: Any = None) -> Member:
    """The live member `member_id` (the dashboard), or the one whose display name or pubkey is `target`, or whose
    pubkey starts with it (the wire)."""
    require_moderator(actor, "ban")
    require_live_mesh(actor.mesh)
    live = Member.objects.select_for_update().filter(mesh=actor.mesh, revoked_at=None)
    if member_id is not None:
        member = _one(list(live.filter(pk=member_id)) if is_id_fragment(member_id) else [], "", "no such member")
    else:
        target = _clean_target(target)
        exact = list(live.filter(Q(display_name=target) | Q(pubkey=target)))
        candidates = exact or list(live.filter(pubkey__startswith=target.lower()))
        member = _one(candidates, target, f'peer "{target}" not found')
    if member.id == actor.member_id:
        raise ServiceError("invalid", "cannot ban yourself")
    if member.role == Role.OWNER:
        raise ServiceError("forbidden", "the mesh owner cannot be banned", status=403)
    now = timezone.now()
    member.revoked_at = now
    member.banned_at = now
    member.save(update_fields=["revoked_at", "banned_at"])
    audit(actor, "member_banned", {"memberId": member.id, "pubkey": member.pubkey, "name": member.display_name})
    publish_after_commit(MeshEvent(MeshEventKind.MEMBER_REVOKED, actor.mesh.id, {"memberId": member.id}))
    return member


@transaction.atomic
def member_unban(*, actor: Actor, target: Any = None, member_id: Any = None) -> Member:
    """A banned member, by id, display name or full pubkey (no prefix: lifting a ban names it exactly)."""
    require_moderator(actor, "unban")
    require_live_mesh(actor.mesh)
    banned = Member.objects.select_for_update().filter(mesh=actor.mesh, banned_at__isnull=False).exclude(revoked_at=None)
    if member_id is not None:
        member = _one(list(banned.filter(pk=member_id)) if is_id_fragment(member_id) else [], "", "no such banned member")
    else:
        target = _clean_target(target)
        named = banned.filter(Q(display_name=target) | Q(pubkey=target.lower()))
        member = _one(list(named), target, f'no banned peer "{target}"')
    live = Member.objects.filter(mesh=actor.mesh, revoked_at=None)
    if (member.pubkey and live.filter(pubkey=member.pubkey).exists()) or (
        not member.pubkey and member.user_id and live.filter(user_id=member.user_id, pubkey=None).exists()
    ):
        raise Conflict("conflict", f'"{member.display_name}" has joined again with the same key: nothing to unban')
    member.revoked_at = None
    member.banned_at = None
    member.save(update_fields=["revoked_at", "banned_at"])
    audit(actor, "member_unbanned", {"memberId": member.id, "pubkey": member.pubkey, "name": member.display_name})
    return member
