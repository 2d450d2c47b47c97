"""JSON plumbing shared by the API and public routes: error bodies, body parsing, method routing, CORS."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt

# The broker's JSON body cap (protocol.md §6): larger bodies get 413 before they are parsed.
MAX_BROKER_BODY_BYTES = 65_536

# Every cross-origin route (the API, the public routes, the broker's HTTP port) answers with these: one policy.
CORS_HEADERS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "POST, GET, OPTIONS",
    "Access-Control-Allow-Headers": (
        "Content-Type, Authorization, X-Mesh-Id, X-Member-Id, X-File-Name, X-Tags, X-Persistent, X-Target-Spec"
    ),
}


class BadBody(Exception):
    """The request body is not what the route accepts (bad JSON, not an object, too large)."""

    def __init__(self, message: str, *, too_large: bool = False):
        super().__init__(message)
        self.message = message
        self.too_large = too_large


def error_response(code: str, message: str, status: int, **extra: Any) -> JsonResponse:
    """The `/api/v1` error shape: `{code, message, status}` plus any detail the error carries."""
    return JsonResponse({**extra, "code": code, "message": message, "status": status}, status=status)


def declared_length(request: HttpRequest) -> int:
    try:
        return int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return 0


def json_object(request: HttpRequest, *, max_bytes: int | None = None) -> dict[str, Any]:
    """The body as a JSON object; an empty body is `{}`. Raises BadBody otherwise."""
    if max_bytes is not None and declared_length(request) > max_bytes:
        raise BadBody("payload too large", too_large=True)
    try:
        body = request.body
    except RequestDataTooBig:  # beyond DATA_UPLOAD_MAX_MEMORY_SIZE
        raise BadBody("payload too large", too_large=True) from None
    if max_bytes is not None and len(body) > max_bytes:
        raise BadBody("payload too large", too_large=True)
    if not body.strip():
        return {}
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise BadBody("request body is not valid JSON") from None
    if not isinstance(data, dict):
        raise BadBody("request body must be a JSON object")
    return data


def with_cors(response: HttpResponse) -> HttpResponse:
    for header, value in CORS_HEADERS.items():
        response[header] = value
    return response


def route(
    *, not_allowed: Callable[[list[str]], HttpResponse], **handlers: Callable[..., HttpResponse]
) -> Callable[..., HttpResponse]:
    """One view per URL that dispatches on the method (`GET=…, POST=…`), answers OPTIONS with 204 and other
    methods with `not_allowed(allowed)`. CSRF-exempt: these routes authenticate by bearer key or by the
    capability in the body, never by cookie."""
    allowed = sorted(handlers)

    @csrf_exempt
    def view(request: HttpRequest, **kwargs: Any) -> HttpResponse:
        if request.method == "OPTIONS":
            response = HttpResponse(status=204)
        elif request.method in handlers:
            response = handlers[request.method](request, **kwargs)
        else:
            response = not_allowed(allowed)
            response["Allow"] = ", ".join([*allowed, "OPTIONS"])
        return with_cors(response)

    return view
