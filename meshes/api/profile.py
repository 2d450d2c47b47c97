"""`/mesh/<meshId>/members` and `PATCH /mesh/<meshId>/member/<memberId>` (protocol.md §6.8), the reference CLI's
`profile`. [PY] The caller is proven, not named: a member-signed request, or the account's session token with
`X-Member-Id` naming one of the account's own members of that mesh."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, JsonResponse

from accounts import cli_sessions
from meshes import selectors
from meshes.actors import Actor
from meshes.api.auth import bearer_secret
from meshes.api.http import BadBody, json_object, route
from meshes.api.member_auth import signing_member
from meshes.errors import MeshError
from meshes.models import Member
from meshes.online import online_peers
from meshes.services.member_profile import member_profile_update
from protocol.encoding import iso_or_none
from protocol.ids import is_id_fragment


def _refused(status: int, error: str) -> JsonResponse:
    return JsonResponse({"ok": False, "error": error}, status=status)


def _not_allowed(allowed: list[str]) -> JsonResponse:
    return _refused(405, "method not allowed")


def _caller(request: HttpRequest, mesh_id: str) -> Actor | JsonResponse:
    member = signing_member(request, body=request.body)
    if member is None:
        token = bearer_secret(request)
        session = cli_sessions.cli_session_authenticate(token=token) if token else None
        if session is None:
            return _refused(401, "unauthorized: sign the request with your member key, or sign in (claudemesh login)")
        claimed = request.headers.get("X-Member-Id", "")
        mine = Member.objects.filter(mesh_id=mesh_id, user=session.user, revoked_at=None)
        member = mine.filter(pk=claimed).first() if is_id_fragment(claimed) else mine.order_by("joined_at").first()
        if member is None:
            return _refused(403, "member does not belong to authenticated user")
    if member.mesh_id != mesh_id:
        return _refused(400, "caller not a member of this mesh")
    return selectors.actor_for_member(member_id=member.id, via="api")


def member_json(member: Member, sessions: int | None = None) -> dict[str, Any]:
    body = {
        "id": member.id, "displayName": member.display_name, "roleTag": member.role_tag or None,
        "groups": member.default_groups, "messageMode": member.message_mode, "permission": member.wire_role,
        "dashboardUserId": str(member.user_id) if member.user_id else None,
        "joinedAt": iso_or_none(member.joined_at), "lastSeenAt": iso_or_none(member.last_seen_at),
    }
    if sessions is not None:
        body.update(online=sessions > 0, sessionCount=sessions)
    return body


def _members(request: HttpRequest, mesh_id: str) -> JsonResponse:
    actor = _caller(request, mesh_id)
    if isinstance(actor, JsonResponse):
        return actor
    counts: dict[str, int] = {}
    for peer in online_peers(mesh_id=mesh_id) or []:
        counts[peer["memberId"]] = counts.get(peer["memberId"], 0) + 1
    members = selectors.members_for_mesh(mesh=actor.mesh)
    return JsonResponse({"ok": True, "members": [member_json(m, counts.get(m.id, 0)) for m in members]})


def _patch(request: HttpRequest, mesh_id: str, member_id: str) -> JsonResponse:
    actor = _caller(request, mesh_id)
    if isinstance(actor, JsonResponse):
        return actor
    try:
        member, changed = member_profile_update(actor=actor, member_id=member_id, changes=json_object(request))
    except BadBody as exc:
        return _refused(exc.status, exc.message)
    except MeshError as exc:
        return _refused(exc.status, exc.message)
    return JsonResponse({"ok": True, "member": member_json(member), "changes": changed})


members = route(not_allowed=_not_allowed, GET=_members)
member = route(not_allowed=_not_allowed, PATCH=_patch)
