"""Public and broker HTTP routes (no account): v1 enrollment, v2 claims, short-code lookup, invite preview.

Bodies follow the reference byte for byte where clients depend on them: `/join` answers `{ok, error}`
(protocol.md §6.3), claims answer `{error}` (§6.5), lookups `{found}` / `{valid, reason}` (platform.md §3.4).
"""

from __future__ import annotations

import logging

from django.http import HttpRequest, JsonResponse

from meshes import services
from meshes.api.http import BadBody, json_object, route
from meshes.api.previews import invite_preview
from meshes.api.ratelimit import anonymous_rate_limit
from meshes.errors import ServiceError

logger = logging.getLogger(__name__)


def _join_not_allowed(allowed: list[str]) -> JsonResponse:
    return JsonResponse({"ok": False, "error": "method not allowed"}, status=405)


def _not_allowed(allowed: list[str]) -> JsonResponse:
    return JsonResponse({"error": "method_not_allowed"}, status=405)


def _join(request: HttpRequest) -> JsonResponse:
    try:
        body = json_object(request)
    except BadBody as exc:
        error = "payload too large" if exc.too_large else exc.message
        return JsonResponse({"ok": False, "error": error, "code": exc.code}, status=exc.status)
    try:
        result = services.invite_join_v1(
            invite_token=body.get("invite_token"),
            invite_payload=body.get("invite_payload"),
            peer_pubkey=body.get("peer_pubkey"),
            display_name=body.get("display_name"),
            replaces=body.get("replaces"),
        )
    except ServiceError as exc:
        # The argument checks answer with their sentence, every later check with its code; all are 400s
        # in the reference, member_insert_failed included.
        return JsonResponse({"ok": False, "error": exc.message if exc.code == "invalid_args" else exc.code}, status=400)
    except Exception:
        logger.exception("POST /join failed")
        return JsonResponse({"ok": False, "error": "internal error"}, status=500)
    answer = {"ok": True, "memberId": result.member.id}
    if result.already_member:
        answer["alreadyMember"] = True
    if result.linked:  # additive (docs/wire-extensions.md): the key now belongs to a dashboard account's member
        answer.update({"linked": True, "displayName": result.member.display_name, "role": result.member.role})
        if result.retired is not None:
            answer["retiredMemberId"] = result.retired.id
    return JsonResponse(answer)


def _claim(request: HttpRequest, code: str) -> JsonResponse:
    try:
        body = json_object(request)
    except BadBody as exc:
        error = "payload too large" if exc.too_large else "malformed"
        return JsonResponse({"error": error, "code": exc.code, "detail": exc.message}, status=exc.status)
    try:
        result = services.invite_claim_v2(
            code=code,
            recipient_x25519_pubkey=body.get("recipient_x25519_pubkey"),
            peer_pubkey=body.get("peer_pubkey"),
            display_name=body.get("display_name"),
        )
    except ServiceError as exc:
        return JsonResponse({"error": exc.code, "detail": exc.message}, status=exc.status)
    return JsonResponse(result)


def _invite_code(request: HttpRequest, code: str) -> JsonResponse:
    try:
        token = services.invite_token_for_code(code=code)
    except ServiceError:
        return JsonResponse({"found": False}, status=404)
    return JsonResponse({"found": True, "token": token})


def _invite_preview(request: HttpRequest, token: str) -> JsonResponse:
    preview = invite_preview(token=token)
    response = JsonResponse(preview)
    response["Cache-Control"] = "public, max-age=30" if preview["valid"] else "no-store"
    return response


join = route(not_allowed=_join_not_allowed, POST=anonymous_rate_limit("join")(_join))
claim = route(not_allowed=_not_allowed, POST=anonymous_rate_limit("claim")(_claim))
invite_code = route(not_allowed=_not_allowed, GET=anonymous_rate_limit("invite-code")(_invite_code))
invite_preview_view = route(not_allowed=_not_allowed, GET=_invite_preview)
