"""`/cli/mesh/<slug>/grants` (platform.md: grant, revoke and block from the terminal): the caller's grants, read
and merged (`{grants: {pubkey: [caps] | null}}`), answered `{ok, grants}`. The caller proves it is a member by
signing the request with its member key."""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse

from meshes.api.http import BadBody, json_object, route
from meshes.api.member_auth import requires_member
from meshes.errors import MeshError
from meshes.services.grants import member_grants_update


def _not_allowed(allowed: list[str]) -> JsonResponse:
    return JsonResponse({"ok": False, "error": "method not allowed"}, status=405)


def _wrong_mesh(actor, slug: str) -> JsonResponse | None:
    if actor.mesh.slug != slug and actor.mesh.id != slug:
        return JsonResponse({"ok": False, "error": "the signing member is not in this mesh"}, status=403)
    return None


@requires_member
def _get(request: HttpRequest, actor, slug: str) -> JsonResponse:
    return _wrong_mesh(actor, slug) or JsonResponse({"ok": True, "grants": actor.member.peer_grants or {}})


@requires_member
def _post(request: HttpRequest, actor, slug: str) -> JsonResponse:
    refused = _wrong_mesh(actor, slug)
    if refused is not None:
        return refused
    try:
        body = json_object(request)
        member = member_grants_update(actor=actor, grants=body.get("grants"))
    except BadBody as exc:
        return JsonResponse({"ok": False, "error": exc.message}, status=exc.status)
    except MeshError as exc:
        return JsonResponse({"ok": False, "error": exc.message, "code": exc.code}, status=exc.status)
    return JsonResponse({"ok": True, "grants": member.peer_grants})


grants = route(not_allowed=_not_allowed, GET=_get, POST=_post)
