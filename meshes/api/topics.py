"""`/api/v1` reads for bots (platform.md §3.2): who is online, the topics a key may see, a topic's history (the
ciphertext as sent, newest first, a stable `before` cursor). Scopes: a key with topic scopes sees only those
topics; a private topic is read only by a key bound to one of its members (or an admin key)."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, JsonResponse

from meshes.actors import Actor
from meshes.api.auth import requires_key
from meshes.api.views import api_route
from meshes.errors import Forbidden, ServiceError
from meshes.models import ApiKeyCapability, Topic, TopicMessage
from meshes.online import online_peers
from meshes.selectors_topics import HISTORY_MAX, require_topic, require_topic_reader, topic_history
from protocol.encoding import iso_or_none


def topic_in_scope(actor: Actor, topic: Topic) -> None:
    if not actor.api_key.allows_topic(topic.name):
        raise Forbidden("api_key_topic_out_of_scope", f'this API key is not scoped to "{topic.name}"', topic=topic.name)


def reading_actor(actor: Actor) -> Actor:
    """Visibility as the bound member sees it (an admin key sees what managers see)."""
    member = actor.api_key.acting_member
    return actor if member is None else Actor(mesh=actor.mesh, member=member, api_key=actor.api_key, via="api")


def history_entry(row: TopicMessage) -> dict[str, Any]:
    return {"id": row.id, "senderPubkey": row.sender_pubkey, "senderMemberId": row.sender_member_id,
            "senderSessionPubkey": row.sender_session_pubkey, "nonce": row.nonce, "ciphertext": row.ciphertext,
            "createdAt": iso_or_none(row.created_at)}


@requires_key(ApiKeyCapability.READ)
def _peers(request: HttpRequest, actor: Actor) -> JsonResponse:
    """One entry per member with a live session, newest connection first (hidden sessions are not listed)."""
    seen: dict[str, dict[str, Any]] = {}
    for peer in reversed(online_peers(mesh_id=actor.mesh.id) or []):
        if peer["visible"] and peer["memberId"] not in seen:
            seen[peer["memberId"]] = {"memberId": peer["memberId"], "pubkey": peer["memberPubkey"],
                                      "displayName": peer["name"], "status": peer["status"],
                                      "summary": peer["summary"], "groups": peer["groups"]}
    return JsonResponse({"peers": list(seen.values())})


@requires_key(ApiKeyCapability.READ)
def _topics(request: HttpRequest, actor: Actor) -> JsonResponse:
    topics = Topic.objects.filter(mesh=actor.mesh, archived_at=None).order_by("name")
    return JsonResponse({"topics": [
        {"id": t.id, "name": t.name, "description": t.description, "visibility": t.visibility,
         "createdAt": iso_or_none(t.created_at)}
        for t in topics if actor.api_key.allows_topic(t.name)
    ]})


def _limit(request: HttpRequest) -> int | None:
    raw = request.GET.get("limit")
    if raw is None:
        return None
    if not raw.isdigit() or not 1 <= int(raw) <= HISTORY_MAX:
        raise ServiceError("invalid_limit", f"limit must be 1–{HISTORY_MAX}", status=422)
    return int(raw)


@requires_key(ApiKeyCapability.READ)
def _topic_messages(request: HttpRequest, actor: Actor, name: str) -> JsonResponse:
    topic = require_topic(mesh_id=actor.mesh.id, topic_ref=name)
    topic_in_scope(actor, topic)
    require_topic_reader(actor=reading_actor(actor), topic=topic)
    limit = _limit(request)
    rows = topic_history(topic=topic, limit=limit, before_id=request.GET.get("before"))
    full = len(rows) == (limit or 50)
    return JsonResponse({"topic": topic.name, "topicId": topic.id, "messages": [history_entry(r) for r in rows],
                         "nextBefore": rows[-1].id if rows and full else None})


peers = api_route(GET=_peers)
topics = api_route(GET=_topics)
topic_messages_read = _topic_messages
