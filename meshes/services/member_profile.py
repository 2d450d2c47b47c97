"""A member's profile as §6.8's PATCH edits it: display name, role tag, default groups, message mode and (managers
only) permission. A member edits itself; owners and admins edit anyone. One transaction, one audit entry."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from meshes.actors import Actor
from meshes.errors import Forbidden, ServiceError
from meshes.models import Member, Role
from meshes.services.checks import audit, clean_name, live_member_in_mesh, printable, require_live_mesh
from meshes.services.meshes import MEMBER_NAME_MAX, member_set_role

PROFILE_FIELDS = ("displayName", "roleTag", "groups", "messageMode", "permission")
MESSAGE_MODES = ("push", "inbox", "off")
MAX_GROUPS = 50


def _clean_groups(value: Any) -> list[dict[str, str]]:
    if not isinstance(value, list) or len(value) > MAX_GROUPS:
        raise ServiceError("invalid_args", f"groups must be a list of at most {MAX_GROUPS} {{name, role?}}")
    groups = []
    for item in value:
        item = {"name": item} if isinstance(item, str) else item
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            raise ServiceError("invalid_args", "each group is {name, role?}")
        group = {"name": clean_name(item["name"], field="group name", min_length=1, max_length=64)}
        if item.get("role") is not None:
            group["role"] = clean_name(item["role"], field="group role", min_length=1, max_length=32)
        groups.append(group)
    return groups


@transaction.atomic
def member_profile_update(*, actor: Actor, member_id: str, changes: dict[str, Any]) -> tuple[Member, list[str]]:
    """Returns the member and the fields that changed."""
    require_live_mesh(actor.mesh)
    given = {field: changes[field] for field in PROFILE_FIELDS if field in changes}
    if not given:
        raise ServiceError("invalid_args", "no fields to update")
    if not actor.is_manager and actor.member_id != member_id:
        raise Forbidden("forbidden", "not authorized — only admins or self can edit")
    if "permission" in given and not actor.is_manager:
        raise Forbidden("forbidden", "admin-managed fields: permission")
    member = live_member_in_mesh(actor, member_id)
    updates: dict[str, Any] = {}
    if "displayName" in given:
        updates["display_name"] = clean_name(given["displayName"], field="name", min_length=1, max_length=MEMBER_NAME_MAX)
    if "roleTag" in given:
        tag = given["roleTag"] if given["roleTag"] is not None else ""
        if not isinstance(tag, str) or len(tag) > 64:
            raise ServiceError("invalid_args", "roleTag must be text of at most 64 characters")
        updates["role_tag"] = printable(tag).strip()
    if "groups" in given:
        updates["default_groups"] = _clean_groups(given["groups"])
    if "messageMode" in given:
        if given["messageMode"] not in MESSAGE_MODES:
            raise ServiceError("invalid_args", f"messageMode must be one of {', '.join(MESSAGE_MODES)}")
        updates["message_mode"] = given["messageMode"]
    if "permission" in given and given["permission"] not in (Role.ADMIN, Role.MEMBER):
        raise ServiceError("invalid_args", "permission must be admin or member")
    changed = [field for field, value in updates.items() if getattr(member, field) != value]
    for field in changed:
        setattr(member, field, updates[field])
    if changed:
        member.save(update_fields=changed)
    if "permission" in given and member.role != Role.OWNER and member.role != given["permission"]:
        member = member_set_role(actor=actor, member_id=member.id, role=given["permission"])
        changed.append("role")
    if changed:
        audit(actor, "member_profile_updated", {"memberId": member.id, "fields": changed})
    return member, changed
