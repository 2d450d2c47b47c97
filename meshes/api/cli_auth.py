"""`/cli/device-code…`, `/cli/session/revoke`, `/cli/token` (protocol.md §6.7): the HTTP side of `claudemesh login`
and `logout`, and `requires_cli_user`, the bearer check of every route a signed-in terminal calls (§6.4).

[PY] Approval needs the dashboard session of the person approving (and its CSRF token); the reference trusted a
`user_id` in the body. `/cli/token` mints nothing without a session either: the `/token` page does that.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_protect

from accounts import cli_sessions
from accounts.cli_sessions import CliAuthError
from meshes import site
from meshes.api.auth import bearer_secret
from meshes.api.http import BadBody, json_object, route
from meshes.api.ratelimit import client_ip, over_limit, rate_limited_response
from meshes.errors import MeshError
from protocol.encoding import iso_or_none

Handler = Callable[..., HttpResponse]


def cli_error(code: str, message: str, status: int, **extra: Any) -> JsonResponse:
    """The `/cli/*` error shape: the reference's `{error}` plus our stable `code`."""
    return JsonResponse({"ok": False, "error": message, "code": code, **extra}, status=status)


def _not_allowed(allowed: list[str]) -> JsonResponse:
    return cli_error("method_not_allowed", f"use {' or '.join(allowed)} here", 405)


def cli_route(**handlers: Handler) -> Handler:
    return route(not_allowed=_not_allowed, **handlers)


def requires_cli_user(handler: Handler) -> Handler:
    """401 without a live session token; the handler gets the signed-in user. Service refusals become JSON."""

    @functools.wraps(handler)
    def wrapped(request: HttpRequest, **kwargs: Any) -> HttpResponse:
        header = request.META.get("HTTP_AUTHORIZATION", "")
        if not header:
            return cli_error("missing_bearer_token", "sign in first: claudemesh login", 401)
        token = bearer_secret(request)
        if token is None:
            return cli_error("empty_bearer_token", "send the session token as 'Authorization: Bearer <token>'", 401)
        session = cli_sessions.cli_session_authenticate(token=token)
        if session is None:
            return cli_error("invalid_or_revoked_token", "this sign-in was revoked or has expired: claudemesh login", 401)
        try:
            return handler(request, session.user, **kwargs)
        except BadBody as exc:
            return cli_error(exc.code, exc.message, exc.status)
        except MeshError as exc:
            return cli_error(exc.code, exc.message, exc.status, **exc.extra)

    return wrapped


# --- device codes -------------------------------------------------------------------------------------------


def _start(request: HttpRequest) -> JsonResponse:
    ip = client_ip(request)
    retry_after = over_limit(scope="device-code", ip=ip, per_minute=settings.DEVICE_CODE_RATE_PER_MIN)
    if retry_after is not None:
        return rate_limited_response(retry_after)
    try:
        body = json_object(request, allow_empty=True)
    except BadBody as exc:
        return cli_error(exc.code, exc.message, exc.status)
    row, device_code = cli_sessions.device_code_start(
        hostname=body.get("hostname"), platform=body.get("platform"), arch=body.get("arch"), ip=ip
    )
    base = site.app_url()
    return JsonResponse({
        "device_code": device_code,
        "user_code": row.user_code,
        "session_id": row.session_id,
        "expires_at": iso_or_none(row.expires_at),
        "interval": cli_sessions.POLL_INTERVAL_SECONDS,
        "verification_url": f"{base}/cli-auth",
        "token_url": f"{base}/token",
    })


def _poll(request: HttpRequest, device_code: str) -> JsonResponse:
    outcome = cli_sessions.device_code_poll(device_code=device_code)
    if outcome.status != "approved":
        return JsonResponse({"status": outcome.status})
    return JsonResponse({
        "status": "approved",
        "session_token": outcome.token,
        "user": cli_sessions.user_summary(outcome.user),
    })


@csrf_protect
def _approve(request: HttpRequest, code: str) -> JsonResponse:
    try:
        row = cli_sessions.device_code_decide(user=request.user, session_ref=code, approve=True)
    except CliAuthError as exc:
        return cli_error(exc.code, exc.message, exc.status)
    return JsonResponse({"ok": True, "user_code": row.user_code})


def _revoke(request: HttpRequest) -> JsonResponse:
    try:
        body = json_object(request, allow_empty=True)
    except BadBody as exc:
        return cli_error(exc.code, exc.message, exc.status)
    token = body.get("token") or bearer_secret(request)
    if not isinstance(token, str) or not token:
        return cli_error("token_required", "token required", 400)
    return JsonResponse({"ok": True, "found": cli_sessions.cli_session_revoke_token(token=token)})


def _token(request: HttpRequest) -> JsonResponse:
    return cli_error(
        "sign_in_required", f"tokens are minted only for a signed-in person: open {site.app_url()}/token", 403
    )


device_code = cli_route(POST=_start)
device_code_poll = cli_route(GET=_poll)
device_code_approve = cli_route(POST=_approve)
session_revoke = cli_route(POST=_revoke)
token = cli_route(POST=_token)
