"""JSON plumbing shared by the API and public routes: error bodies, body parsing, method routing, CORS."""

from __future__ import annotations

import json
import re
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
    """The request body is not what the route accepts: `code` is stable, `status` 400 or 413."""

    def __init__(self, code: str, message: str, *, status: int = 400):
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status

    @property
    def too_large(self) -> bool:
        return self.status == 413


def error_response(code: str, message: str, status: int, **extra: Any) -> JsonResponse:
    """The `/api/v1` error shape: `{code, message, status}` plus any detail the error carries."""
    return JsonResponse({**extra, "code": code, "message": message, "status": status}, status=status)


def declared_length(request: HttpRequest) -> int:
    try:
        return int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return 0


# Every JSON body any route reads obeys these: nothing legitimate comes near them, and past them the parser's own
# limits (recursion, int digits) would fail with a 500 instead of a clear answer.
MAX_JSON_DEPTH = 32
MAX_NUMBER_CHARS = 40
_STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"')
_BRACKETS = re.compile(r"[\[\]{}]")


def _too_deep(text: str) -> bool:
    depth = 0
    for bracket in _BRACKETS.findall(_STRINGS.sub("", text)):
        depth += 1 if bracket in "[{" else -1
        if depth > MAX_JSON_DEPTH:
            return True
    return False


def _number(cast: Callable[[str], Any]) -> Callable[[str], Any]:
    def parse(literal: str) -> Any:
        if len(literal) > MAX_NUMBER_CHARS:
            raise BadBody("number_too_long", f"numbers in the body are limited to {MAX_NUMBER_CHARS} characters")
        return cast(literal)

    return parse


def _no_constant(name: str) -> Any:
    raise BadBody("invalid_json", f"{name} is not JSON")


def json_object(
    request: HttpRequest, *, max_bytes: int = MAX_BROKER_BODY_BYTES, allow_empty: bool = False
) -> dict[str, Any]:
    """The one JSON body reader of every HTTP route: the body as a JSON object, within the size, depth and number
    limits. An empty body is `{}` only where the route allows it. Raises BadBody otherwise."""
    data = json_value(request, max_bytes=max_bytes, allow_empty=allow_empty)
    if not isinstance(data, dict):
        raise BadBody("not_an_object", "request body must be a JSON object")
    return data


def json_value(request: HttpRequest, *, max_bytes: int = MAX_BROKER_BODY_BYTES, allow_empty: bool = False) -> Any:
    """Any JSON value, under `json_object`'s limits (webhooks take arrays and objects)."""
    if declared_length(request) > max_bytes:
        raise BadBody("payload_too_large", f"the body is limited to {max_bytes} bytes", status=413)
    try:
        body = request.body
    except RequestDataTooBig:  # beyond DATA_UPLOAD_MAX_MEMORY_SIZE
        raise BadBody("payload_too_large", f"the body is limited to {max_bytes} bytes", status=413) from None
    if len(body) > max_bytes:
        raise BadBody("payload_too_large", f"the body is limited to {max_bytes} bytes", status=413)
    if not body.strip():
        if allow_empty:
            return {}
        raise BadBody("body_required", "this route needs a JSON object body")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise BadBody("invalid_utf8", "the body is not valid UTF-8") from None
    if _too_deep(text):
        raise BadBody("too_deep", f"JSON nested deeper than {MAX_JSON_DEPTH} levels")
    try:
        data = json.loads(
            text, parse_int=_number(int), parse_float=_number(float), parse_constant=_no_constant
        )
    except (json.JSONDecodeError, RecursionError, ValueError):
        raise BadBody("invalid_json", "request body is not valid JSON") from None
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
