"""The OpenAPI 3.1 description of `/api/v1`, served at `/api/v1/schema` (JSON) and `/api/v1/docs` (a page). One
entry per route and method below; a test walks the URL configuration and fails when a route is missing here."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render

from meshes import site

API_VERSION = "1.0"
ERROR_CODES = {
    "api_key_missing": "401: no `Authorization: Bearer cm_…` header",
    "api_key_invalid": "401: unknown, revoked or expired key (or its mesh is archived)",
    "api_key_missing_capability": "403: the key lacks the route's capability (`capability` says which)",
    "api_key_topic_out_of_scope": "403: the topic is outside the key's topic scopes",
    "api_key_unbound": "409: sending or reading an inbox needs a key bound to a member (`memberId`)",
    "forbidden": "403: the key's member may not do that (a private topic, a manager-only action)",
    "topic_not_found": "404: no such live topic in the key's mesh",
    "invite_not_found": "404: no such invite in the key's mesh",
    "not_found": "404: no such API route",
    "method_not_allowed": "405: the route does not take this method",
    "invalid_args": "400: a field is missing or malformed (the message names it)",
    "invalid_json": "400: the body is not JSON (also `not_an_object`, `body_required`, `too_deep`)",
    "payload_too_large": "413: the body (or the envelope) is over its limit",
    "invalid_limit": "422: `limit` is outside its range",
    "invalid_cursor": "422: `after` is not a cursor the server gave",
    "invalid_ids": "422: `ids` is not a list of 1–500 message ids",
    "target_required": "422: a send names neither `targetSpec` nor `topic`",
    "parse_or_handler": "422: the envelope is malformed (nonce, ciphertext and targetSpec are strings)",
    "blocked": "422: the send was refused (not a member of the topic, a banned sender…)",
    "rate_limited": "429: over `API_RATE_PER_MIN` requests this minute (`Retry-After` says when to retry)",
}

_ERROR = {"$ref": "#/components/schemas/Error"}
_STRING, _INT, _BOOL = {"type": "string"}, {"type": "integer"}, {"type": "boolean"}
_NULLABLE_STRING = {"type": ["string", "null"]}


def _obj(properties: dict[str, Any], required: tuple[str, ...] = ()) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        schema["required"] = list(required)
    return schema


def _list(name: str, item: dict[str, Any], *, cursor: str | None = "nextCursor") -> dict[str, Any]:
    properties = {name: {"type": "array", "items": item}}
    if cursor:
        properties[cursor] = _NULLABLE_STRING
    return _obj(properties, (name,))


PUSH = _obj({
    "messageId": _STRING, "meshId": _STRING, "senderPubkey": _STRING, "senderMemberId": _NULLABLE_STRING,
    "priority": {"enum": ["now", "next", "low"]}, "nonce": _STRING, "ciphertext": _STRING, "createdAt": _STRING,
    "targetSpec": _STRING, "subtype": _STRING, "cursor": _STRING,
})
HISTORY_MESSAGE = _obj({"id": _STRING, "senderPubkey": _STRING, "senderMemberId": _STRING,
                        "senderSessionPubkey": _NULLABLE_STRING, "nonce": _STRING, "ciphertext": _STRING,
                        "createdAt": _STRING, "topicId": _STRING})
ENVELOPE = _obj({"targetSpec": {"type": "string", "description": "a member's pubkey, `*`, `@group` or `#<topicId>`"},
                 "topic": {"type": "string", "description": "a topic name instead of targetSpec"},
                 "nonce": _STRING, "ciphertext": _STRING, "priority": {"enum": ["now", "next", "low"]},
                 "clientMessageId": _STRING}, ("nonce", "ciphertext"))
SENT = _obj({"messageId": _STRING, "targetSpec": _STRING, "delivered": _INT, "topic": _STRING, "topicId": _STRING,
             "historyId": _STRING}, ("messageId", "targetSpec"))
MEMBER = _obj({"id": _STRING, "displayName": _STRING, "role": _STRING, "roleTag": _STRING, "pubkey": _NULLABLE_STRING,
               "groups": {"type": "array"}, "joinedAt": _STRING, "lastSeenAt": _NULLABLE_STRING})
KEY = _obj({"id": _STRING, "label": _STRING, "prefix": _STRING, "capabilities": {"type": "array", "items": _STRING},
            "topicScopes": {"type": ["array", "null"]}, "memberId": _NULLABLE_STRING, "status": _STRING,
            "createdAt": _STRING, "expiresAt": _NULLABLE_STRING})
INVITE = _obj({"id": _STRING, "code": _STRING, "role": _STRING, "maxUses": _INT, "usedCount": _INT, "state": _STRING,
               "expiresAt": _STRING, "shortUrl": _STRING})

_LIMIT = {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 200}}
_AFTER = {"name": "after", "in": "query", "schema": _STRING, "description": "`nextCursor` of the previous page"}
_PAGED = [_LIMIT, _AFTER]


def _op(summary: str, capability: str | None, response: dict[str, Any], *, status: str = "200",
        body: dict[str, Any] | None = None, params: list[dict[str, Any]] | None = None,
        content_type: str = "application/json") -> dict[str, Any]:
    operation: dict[str, Any] = {
        "summary": summary,
        "description": f"Capability: `{capability}`." if capability else "Any live key.",
        "responses": {
            status: {"description": "OK", "content": {content_type: {"schema": response}}},
            "default": {"description": "An error: see the `code` list", "content": {"application/json": {"schema": _ERROR}}},
        },
    }
    if body is not None:
        operation["requestBody"] = {"required": True, "content": {"application/json": {"schema": body}}}
    if params:
        operation["parameters"] = params
    return operation


_NAME = {"name": "name", "in": "path", "required": True, "schema": _STRING, "description": "topic name (or id)"}
_INVITE_ID = {"name": "invite_id", "in": "path", "required": True, "schema": _STRING}

PATHS: dict[str, dict[str, Any]] = {
    "/me": {"get": _op("The key and its mesh", None, _obj({"mesh": {"type": "object"}, "key": KEY}))},
    "/members": {"get": _op("Members of the mesh, oldest first", "read", _list("members", MEMBER), params=_PAGED)},
    "/invites": {
        "get": _op("Invites, newest first", "admin", _list("invites", INVITE), params=_PAGED),
        "post": _op("Create an invite", "admin", INVITE, status="201",
                    body=_obj({"role": {"enum": ["member", "admin"]}, "maxUses": _INT, "expiresInDays": _INT})),
    },
    "/invites/{invite_id}/revoke": {"post": _op("Revoke an invite", "admin", INVITE, params=[_INVITE_ID])},
    "/api-keys": {
        "get": _op("API keys, newest first", "admin", _list("keys", KEY), params=_PAGED),
        "post": _op("Create a key (the secret is in this response only)", "admin", KEY, status="201",
                    body=_obj({"label": _STRING, "capabilities": {"type": "array", "items": _STRING},
                               "topicScopes": {"type": ["array", "null"]}, "expiresAt": _STRING,
                               "memberId": {"type": "string", "description": "the member the key acts as"}},
                              ("label", "capabilities"))),
    },
    "/api-keys/revoke": {"post": _op("Revoke a key by id or unique prefix", "admin", _obj({"status": _STRING}),
                                     body=_obj({"id": _STRING}, ("id",)))},
    "/peers": {"get": _op("Members with a live session, newest first", "read", _list("peers", _obj({
        "memberId": _STRING, "pubkey": _STRING, "displayName": _STRING, "status": _STRING,
        "summary": _NULLABLE_STRING, "groups": {"type": "array"}}), cursor=None))},
    "/topics": {"get": _op("Live topics in the key's scope, by name", "read", _list("topics", _obj({
        "id": _STRING, "name": _STRING, "description": _NULLABLE_STRING, "visibility": _STRING,
        "createdAt": _STRING}), cursor=None))},
    "/topics/{name}/messages": {
        "get": _op("A topic's history, newest first", "read",
                   _obj({"topic": _STRING, "topicId": _STRING, "messages": {"type": "array", "items": HISTORY_MESSAGE},
                         "nextBefore": _NULLABLE_STRING}),
                   params=[_NAME, _LIMIT, {"name": "before", "in": "query", "schema": _STRING,
                                           "description": "`nextBefore` of the previous page (a message id)"}]),
        "post": _op("Post an envelope to the topic as the key's member", "send", SENT, status="201", body=ENVELOPE,
                    params=[_NAME]),
    },
    "/messages": {
        "get": _op("The key member's inbox, oldest first, until acknowledged", "read",
                   _obj({"memberId": _STRING, "messages": {"type": "array", "items": PUSH},
                         "nextCursor": _NULLABLE_STRING}), params=_PAGED),
        "post": _op("Send an envelope (to a member, `*`, `@group` or a topic) as the key's member", "send", SENT,
                    status="201", body=ENVELOPE),
    },
    "/messages/ack": {"post": _op("Acknowledge inbox messages (they are not handed out again)", "read",
                                  _obj({"acked": _INT}), body=_obj({"ids": {"type": "array", "items": _STRING}}, ("ids",)))},
    "/stream": {"get": _op(
        "Server-sent events: `message` (inbox) and `topic_message`; resume with `Last-Event-ID`", "read",
        {"type": "string", "description": "text/event-stream"}, content_type="text/event-stream",
        params=[{"name": "Last-Event-ID", "in": "header", "schema": _STRING}],
    )},
    "/schema": {"get": {"summary": "This document", "security": [],
                        "responses": {"200": {"description": "OpenAPI 3.1", "content": {"application/json": {}}}}}},
    "/docs": {"get": {"summary": "This document as a page", "security": [],
                      "responses": {"200": {"description": "HTML", "content": {"text/html": {}}}}}},
}


def openapi_document() -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {"title": "claudemesh REST API", "version": API_VERSION,
                 "description": "API-key bearer auth; JSON errors `{code, message, status}`. See docs/api.md."},
        "servers": [{"url": f"{site.app_url()}/api/v1"}],
        "security": [{"apiKey": []}],
        "paths": PATHS,
        "components": {
            "securitySchemes": {"apiKey": {"type": "http", "scheme": "bearer", "bearerFormat": "cm_…"}},
            "schemas": {"Error": _obj({"code": {"enum": sorted(ERROR_CODES), "description": "; ".join(
                f"`{code}` {meaning}" for code, meaning in ERROR_CODES.items())}, "message": _STRING, "status": _INT},
                ("code", "message", "status"))},
        },
    }


def schema(request: HttpRequest) -> HttpResponse:
    return JsonResponse(openapi_document(), json_dumps_params={"indent": 1})


def docs_page(request: HttpRequest) -> HttpResponse:
    document = openapi_document()
    routes = [(path, method.upper(), operation) for path, methods in document["paths"].items()
              for method, operation in methods.items()]
    return render(request, "dashboard/api_docs.html",
                  {"routes": routes, "errors": ERROR_CODES.items(), "base": document["servers"][0]["url"]})
