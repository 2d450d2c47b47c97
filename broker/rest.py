"""`/api/v1` for bots that send and receive (docs/wire-extensions.md "REST for bots"): an envelope the client
built (ciphertext only) goes through the broker's own send path as the key's bound member; the member's inbox is
read with a cursor and acknowledged; `GET /api/v1/stream` follows inbox and topics as server-sent events that
resume after `Last-Event-ID`."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.views.decorators.csrf import csrf_exempt

from broker.services.rest_inbox import (
    inbox_ack,
    inbox_page,
    latest_topic_seq,
    readable_topic_ids,
    topic_rows_after,
)
from broker.services.routing import Sender, SendRejected
from broker.services.sending import check_send, messages_accept
from broker.worker import get_worker
from meshes.actors import Actor
from meshes.api.auth import key_actor
from meshes.api.http import BadBody, error_response, json_object, with_cors
from meshes.api.topics import history_entry, reading_actor, topic_in_scope, topic_messages_read
from meshes.errors import MeshError
from meshes.models import ApiKeyCapability
from meshes.selectors_topics import require_topic

logger = logging.getLogger(__name__)


async def _actor(request: HttpRequest, capability: str) -> Actor | HttpResponse:
    return await sync_to_async(key_actor)(request, capability)


def _refusal(exc: Exception) -> JsonResponse:
    if isinstance(exc, BadBody):
        return error_response(exc.code, exc.message, exc.status)
    assert isinstance(exc, MeshError)
    return error_response(exc.code, exc.message, exc.status, **exc.extra)


def _bound_member(actor: Actor):
    member = actor.api_key.acting_member
    if member is None:
        raise MeshError("api_key_unbound", "this API key is not bound to a member with a key: create it from the "
                        "bot's own terminal, or with memberId", status=409)
    return member


def _target(actor: Actor, body: dict[str, Any], topic_name: str | None) -> tuple[str, Any]:
    """The targetSpec to send to, and the topic when it is one (scopes are checked here)."""
    topic_ref = topic_name or body.get("topic")
    target = body.get("targetSpec")
    if topic_ref is None and isinstance(target, str) and target.startswith("#"):
        topic_ref = target[1:]
    if topic_ref is not None:
        topic = require_topic(mesh_id=actor.mesh.id, topic_ref=topic_ref)
        topic_in_scope(actor, topic)
        return topic.target_spec, topic
    if not isinstance(target, str) or not target:
        raise BadBody("target_required", "give targetSpec (a member pubkey, *, @group) or topic", status=422)
    if actor.api_key.topic_scopes is not None:
        raise MeshError("api_key_topic_out_of_scope", "this API key may only post to its topics", status=403)
    return target, None


def _send(actor: Actor, body: dict[str, Any], topic_name: str | None, worker_id: str):
    member = _bound_member(actor)
    target, topic = _target(actor, body, topic_name)
    sender = Sender(mesh_id=actor.mesh.id, member_id=member.id, member_pubkey=member.pubkey, session_pubkey=None,
                    presence_id="")
    try:
        item = check_send({**body, "targetSpec": target}, sender)
    except SendRejected as exc:
        raise MeshError(exc.reason or "invalid_send", str(exc), status=413 if exc.reason == "too_large" else 422) from None
    [outcome] = messages_accept(inputs=[item], worker_id=worker_id)
    return outcome, target, topic


async def _post_message(request: HttpRequest, topic_name: str | None = None) -> HttpResponse:
    actor = await _actor(request, ApiKeyCapability.SEND)
    if isinstance(actor, HttpResponse):
        return actor
    worker = get_worker()
    await worker.ensure_started()
    started = time.monotonic()
    try:
        body = await sync_to_async(json_object)(request)
        outcome, target, topic = await sync_to_async(_send)(actor, body, topic_name, worker.worker_id)
    except (BadBody, MeshError) as exc:
        return _refusal(exc)
    if outcome.error is not None:
        return error_response(outcome.reject_reason or "send_refused", outcome.error, 422)
    await worker.sends.push_claimed([outcome], [started])
    answer: dict[str, Any] = {"messageId": outcome.message_id, "targetSpec": target,
                              "delivered": len(outcome.reach.claimed)}
    if topic is not None:
        answer.update(topic=topic.name, topicId=topic.id, historyId=outcome.message_id)
    return JsonResponse(answer, status=201)


# --- the inbox ---------------------------------------------------------------------------------------------


def _cursor(raw: Any) -> int:
    if raw in (None, ""):
        return 0
    if not isinstance(raw, str) or not raw.isdigit() or len(raw) > 19:
        raise BadBody("invalid_cursor", "after must be a cursor from an earlier page", status=422)
    return int(raw)


def _inbox(actor: Actor, request: HttpRequest) -> dict[str, Any]:
    member = _bound_member(actor)
    limit = request.GET.get("limit", "50")
    if not limit.isdigit() or not 1 <= int(limit) <= 200:
        raise BadBody("invalid_limit", "limit must be 1–200", status=422)
    messages = inbox_page(member_id=member.id, after=_cursor(request.GET.get("after")), limit=int(limit))
    return {"memberId": member.id, "messages": messages,
            "nextCursor": messages[-1]["cursor"] if len(messages) == int(limit) else None}


def _ack(actor: Actor, request: HttpRequest) -> dict[str, Any]:
    member = _bound_member(actor)
    ids = json_object(request).get("ids")
    if not isinstance(ids, list) or not ids or len(ids) > 500 or not all(isinstance(i, str) and i for i in ids):
        raise BadBody("invalid_ids", "ids must be a list of 1–500 message ids", status=422)
    return {"acked": inbox_ack(member_id=member.id, message_ids=ids)}


def _read_route(work):
    """An inbox route: a `read` key, then `work(actor, request)` in a thread, its answer as JSON."""

    async def view(request: HttpRequest) -> HttpResponse:
        actor = await _actor(request, ApiKeyCapability.READ)
        if isinstance(actor, HttpResponse):
            return actor
        try:
            return JsonResponse(await sync_to_async(work)(actor, request))
        except (BadBody, MeshError) as exc:
            return _refusal(exc)

    return view


_get_messages = _read_route(_inbox)
_post_ack = _read_route(_ack)


# --- server-sent events ------------------------------------------------------------------------------------


def _resume_point(request: HttpRequest) -> tuple[int, int | None]:
    """`Last-Event-ID` (or `?lastEventId=`) is `<delivery cursor>.<topic seq>`; without it: everything waiting
    in the inbox, topic messages from now on."""
    raw = request.headers.get("Last-Event-ID") or request.GET.get("lastEventId") or ""
    inbox_part, _, topic_part = raw.partition(".")
    if inbox_part.isdigit() and topic_part.isdigit():
        return int(inbox_part), int(topic_part)
    return 0, None


def _stream_batch(actor: Actor, inbox_after: int, topic_after: int) -> list[tuple[str, dict[str, Any], int, int]]:
    events = []
    member = actor.api_key.acting_member
    if member is not None:
        for push in inbox_page(member_id=member.id, after=inbox_after, limit=100):
            inbox_after = int(push["cursor"])
            events.append(("message", push, inbox_after, topic_after))
    reader = reading_actor(actor)
    topic_ids = readable_topic_ids(mesh_id=actor.mesh.id, member_id=reader.member_id,
                                   scopes=actor.api_key.topic_scopes, manager=reader.is_manager)
    for row in topic_rows_after(topic_ids=topic_ids, after_seq=topic_after, limit=100):
        topic_after = row.seq
        events.append(("topic_message", {**history_entry(row), "topicId": row.topic_id}, inbox_after, topic_after))
    return events


def _event(kind: str, data: dict[str, Any], event_id: str) -> bytes:
    return f"id: {event_id}\nevent: {kind}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


async def _events(actor: Actor, inbox_after: int, topic_after: int):
    yield b"retry: 2000\n: connected\n\n"
    quiet_since = time.monotonic()
    while True:
        try:
            batch = await sync_to_async(_stream_batch)(actor, inbox_after, topic_after)
        except Exception:  # the database blinked: say nothing, try again (the client keeps its place)
            logger.warning("api stream: read failed", exc_info=True)
            batch = []
        for kind, data, inbox_after, topic_after in batch:
            yield _event(kind, data, f"{inbox_after}.{topic_after}")
        if batch:
            quiet_since = time.monotonic()
        elif time.monotonic() - quiet_since >= settings.API_STREAM_KEEPALIVE_SECONDS:
            yield b": keepalive\n\n"
            quiet_since = time.monotonic()
        await asyncio.sleep(settings.API_STREAM_POLL_SECONDS)


async def _stream(request: HttpRequest) -> HttpResponse:
    actor = await _actor(request, ApiKeyCapability.READ)
    if isinstance(actor, HttpResponse):
        return actor
    inbox_after, topic_after = _resume_point(request)
    if topic_after is None:
        topic_after = await sync_to_async(latest_topic_seq)()
    response = StreamingHttpResponse(_events(actor, inbox_after, topic_after), content_type="text/event-stream")
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"
    return response


# --- routing by method ---------------------------------------------------------------------------------------


def _async_route(**handlers):
    allowed = sorted(handlers)

    @csrf_exempt
    async def view(request: HttpRequest, **kwargs: Any) -> HttpResponse:
        if request.method == "OPTIONS":
            return with_cors(HttpResponse(status=204))
        handler = handlers.get(request.method or "")
        if handler is None:
            response = error_response("method_not_allowed", f"use {' or '.join(allowed)} here", 405)
            response["Allow"] = ", ".join([*allowed, "OPTIONS"])
            return with_cors(response)
        return with_cors(await handler(request, **kwargs))

    return view


async def _get_topic_messages(request: HttpRequest, name: str) -> HttpResponse:
    return await sync_to_async(topic_messages_read)(request, name=name)


async def _post_topic_message(request: HttpRequest, name: str) -> HttpResponse:
    return await _post_message(request, topic_name=name)


messages = _async_route(GET=_get_messages, POST=_post_message)
messages_ack = _async_route(POST=_post_ack)
topic_messages = _async_route(GET=_get_topic_messages, POST=_post_topic_message)
stream = _async_route(GET=_stream)
