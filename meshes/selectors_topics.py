"""Reads of topics: a topic by id or name, what a member sees in the list (with unread counts), subscribers,
history pages, and the dashboard's metadata-only overview."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db.models import Count, IntegerField, OuterRef, Q, Subquery
from django.db.models.functions import Coalesce

from meshes.actors import Actor
from meshes.errors import Forbidden, NotFound
from meshes.models import Topic, TopicMember, TopicMessage, TopicRole, TopicVisibility
from meshes.text import storable

TOPIC_ID = re.compile(r"^[A-Za-z0-9_-]{20,}$")
HISTORY_DEFAULT, HISTORY_MAX = 50, 200


def topic_for_ref(*, mesh_id: str, topic_ref: Any) -> Topic | None:
    """protocol.md §5.1: ≥ 20 chars of [A-Za-z0-9_-] is tried as an id first, then as a (non-archived) name."""
    if not isinstance(topic_ref, str) or not topic_ref.strip():
        return None
    ref = topic_ref.strip().lstrip("#")
    if not storable(ref):  # no topic is named with NUL or a lone surrogate, and the database cannot compare them
        return None
    live = Topic.objects.filter(mesh_id=mesh_id, archived_at=None)
    if TOPIC_ID.fullmatch(ref):
        topic = live.filter(pk=ref).first()
        if topic is not None:
            return topic
    return live.filter(name=ref.lower()).first()


def require_topic(*, mesh_id: str, topic_ref: Any) -> Topic:
    """`topic_for_ref`, or NotFound `topic_not_found` in the words protocol.md §5.1 gives."""
    topic = topic_for_ref(mesh_id=mesh_id, topic_ref=topic_ref)
    if topic is None:
        raise NotFound("topic_not_found", f'topic "{topic_ref}" not found')
    return topic


@dataclass(frozen=True)
class TopicListing:
    topic: Topic
    member_count: int
    joined: bool
    unread: int
    last_message_at: datetime | None


def topics_for_member(*, actor: Actor) -> list[TopicListing]:
    """Public topics, and the private ones the caller is in (managers see all), sorted by name."""
    member_id = actor.member_id
    topics = _with_counts(_visible_topics(actor))
    mine = {s.topic_id: s for s in TopicMember.objects.filter(member_id=member_id, topic__mesh=actor.mesh)}
    listings = []
    for topic in topics.order_by("name"):
        subscription = mine.get(topic.id)
        unread = _unread(topic, subscription, member_id) if subscription is not None else 0
        listings.append(TopicListing(topic, topic.member_count, subscription is not None, unread, topic.last_activity))
    return listings


def _visible_topics(actor: Actor):
    topics = Topic.objects.filter(mesh=actor.mesh, archived_at=None)
    if actor.is_manager:
        return topics
    mine = TopicMember.objects.filter(member_id=actor.member_id).values("topic_id")
    return topics.filter(Q(visibility=TopicVisibility.PUBLIC) | Q(pk__in=mine))


def topic_for_page(*, actor: Actor, topic_id: str) -> Topic:
    """A topic the actor may see (a private one: its members and the managers), else NotFound."""
    topic = _visible_topics(actor).filter(pk=topic_id).first()
    if topic is None:
        raise NotFound("topic_not_found", "no such topic in this mesh")
    return topic


def _unread(topic: Topic, subscription: TopicMember, member_id: str | None) -> int:
    since = subscription.last_read_at or subscription.joined_at
    return TopicMessage.objects.filter(topic=topic, created_at__gt=since).exclude(sender_member_id=member_id).count()


def topic_subscriptions(*, topic: Topic) -> list[TopicMember]:
    """Subscribers of a topic who are still in the mesh, by display name."""
    return list(
        TopicMember.objects.filter(topic=topic, member__revoked_at=None)
        .select_related("member")
        .order_by("member__display_name", "member_id")
    )


def topic_member_ids(*, topic_ids: set[str]) -> dict[str, set[str]]:
    """topic id → ids of its members still in the mesh (the routing of a topic send)."""
    members: dict[str, set[str]] = {topic_id: set() for topic_id in topic_ids}
    rows = TopicMember.objects.filter(topic_id__in=topic_ids, member__revoked_at=None).values_list("topic_id", "member_id")
    for topic_id, member_id in rows:
        members[topic_id].add(member_id)
    return members


def may_manage_topic(*, actor: Actor, topic: Topic) -> bool:
    """Managers and the topic's leads add and remove its members."""
    if actor.is_manager:
        return True
    return actor.member_id is not None and TopicMember.objects.filter(
        topic=topic, member_id=actor.member_id, role=TopicRole.LEAD
    ).exists()


def require_topic_reader(*, actor: Actor, topic: Topic) -> None:
    """[PY] A public topic's history is open to the mesh; a private one's to its members and the managers."""
    if topic.visibility == TopicVisibility.PUBLIC or actor.is_manager:
        return
    if actor.member_id and TopicMember.objects.filter(topic=topic, member_id=actor.member_id).exists():
        return
    raise Forbidden("forbidden", f'"{topic.name}" is {topic.visibility}: only its members read it')


def topic_history(*, topic: Topic, limit: Any = None, before_id: Any = None) -> list[TopicMessage]:
    """Newest first; `before_id` = strictly older than that message; limit 1…200 (default 50)."""
    count = _clamp_limit(limit)
    rows = TopicMessage.objects.filter(topic=topic)
    if isinstance(before_id, str) and before_id:
        cursor = TopicMessage.objects.filter(topic=topic, id=before_id).values_list("seq", flat=True).first()
        if cursor is None:
            return []
        rows = rows.filter(seq__lt=cursor)
    return list(rows.order_by("-seq")[:count])


def _clamp_limit(limit: Any) -> int:
    if isinstance(limit, bool) or not isinstance(limit, int | float):
        return HISTORY_DEFAULT
    return max(1, min(HISTORY_MAX, int(limit)))


def _count(rows) -> Coalesce:
    """A per-topic count as a subquery: joining members and messages would multiply their rows."""
    counted = rows.filter(topic=OuterRef("pk")).order_by().values("topic").annotate(n=Count("*")).values("n")
    return Coalesce(Subquery(counted, output_field=IntegerField()), 0)


def _with_counts(topics, *, messages: bool = False):
    latest = TopicMessage.objects.filter(topic=OuterRef("pk")).order_by("-seq").values("created_at")[:1]
    topics = topics.annotate(
        member_count=_count(TopicMember.objects.filter(member__revoked_at=None)), last_activity=Subquery(latest)
    )
    return topics.annotate(message_count=_count(TopicMessage.objects.all())) if messages else topics


@dataclass(frozen=True)
class TopicOverview:
    topic: Topic
    member_count: int
    message_count: int
    last_activity: datetime | None


def topics_overview(*, actor: Actor) -> list[TopicOverview]:
    """The dashboard's view: counts and times only (the server cannot read a topic's content). Private topics
    show to their members and to managers."""
    topics = _visible_topics(actor)
    topics = _with_counts(topics, messages=True).order_by("name")
    return [TopicOverview(t, t.member_count, t.message_count, t.last_activity) for t in topics]
