"""Writes to topics (protocol.md §5.1 with its [PY] fixes): create, join, leave, mark read, and the `general`
topic every mesh has and every member is subscribed to. Private (and `dm`) topics are joined only by those a
lead or a manager adds; the reference let anyone in."""

from __future__ import annotations

import re
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from meshes.actors import Actor
from meshes.errors import Forbidden, NotFound, ServiceError
from meshes.models import Member, Role, Topic, TopicMember, TopicRole, TopicVisibility
from meshes.models.topics import GENERAL_TOPIC
from meshes.selectors_topics import may_manage_topic, require_topic
from meshes.services.checks import audit, printable, require_live_mesh, require_member
from meshes.text import storable
from protocol.ids import is_id_fragment

TOPIC_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,49}$")
MAX_DESCRIPTION_CHARS = 500


def topic_clean_name(name: Any) -> str:
    """Strip a leading `#`, lowercase; 1–50 of `[a-z0-9-]`, not starting with `-` (platform.md §1.5)."""
    if not isinstance(name, str):
        raise ServiceError("invalid_args", "topic name must be text")
    cleaned = name.strip().lstrip("#").lower()
    if not TOPIC_NAME.fullmatch(cleaned):
        raise ServiceError("invalid_args", "topic name must be 1–50 of a-z, 0-9 and '-', not starting with '-'")
    return cleaned


def _clean_choice(value: Any, choices, *, field: str, default: str) -> str:
    if value is None or value == "":
        return default
    if not isinstance(value, str) or value not in choices.values:
        raise ServiceError("invalid_args", f"{field} must be one of {', '.join(choices.values)}")
    return value


def _clean_description(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ServiceError("invalid_args", "description must be text")
    cleaned = printable(value).strip()
    if not storable(cleaned):
        raise ServiceError("invalid_args", "description must be valid text")
    if len(cleaned) > MAX_DESCRIPTION_CHARS:
        raise ServiceError("invalid_args", f"description must be at most {MAX_DESCRIPTION_CHARS} characters")
    return cleaned or None


def _clean_member_id(value: Any) -> str | None:
    if value is None or value == "":
        return None
    if not is_id_fragment(value):
        raise ServiceError("invalid_args", "memberId must be a member id")
    return value


@transaction.atomic
def topic_create(*, actor: Actor, name: Any, description: Any = None, visibility: Any = None) -> tuple[Topic, bool]:
    """Idempotent on (mesh, name): an existing topic comes back with created False. The creator joins as lead."""
    member = require_member(actor)
    require_live_mesh(actor.mesh)
    cleaned = topic_clean_name(name)
    chosen = _clean_choice(visibility, TopicVisibility, field="visibility", default=TopicVisibility.PUBLIC)
    details = _clean_description(description)
    topic = Topic.objects.filter(mesh=actor.mesh, name=cleaned).first()
    created = False
    if topic is None:
        try:
            with transaction.atomic():
                topic = Topic.objects.create(
                    mesh=actor.mesh, name=cleaned, description=details, visibility=chosen, created_by=member
                )
            created = True
        except IntegrityError:  # created meanwhile by someone else
            topic = Topic.objects.get(mesh=actor.mesh, name=cleaned)
    if topic.archived_at is not None:
        raise ServiceError("topic_archived", f'topic "{cleaned}" is archived')
    _subscribe(topic, member, TopicRole.LEAD)
    if created:
        audit(actor, "topic_created", {"topicId": topic.id, "name": cleaned, "visibility": chosen})
    return topic, created


def _subscribe(topic: Topic, member: Member, role: str) -> TopicMember:
    """An existing subscription keeps its role (protocol.md §5.1)."""
    subscription, _ = TopicMember.objects.get_or_create(topic=topic, member=member, defaults={"role": role})
    return subscription


@transaction.atomic
def topic_join(*, actor: Actor, topic_ref: Any, role: Any = None, member_id: Any = None) -> TopicMember:
    """The caller joins (any public topic), or a lead or manager adds `member_id` (any topic)."""
    caller = actor.member if actor.member is not None and actor.member.is_active else None
    member_id = _clean_member_id(member_id)
    topic = _topic(actor, topic_ref)
    chosen = _clean_choice(role, TopicRole, field="role", default=TopicRole.MEMBER)
    if member_id is None or (caller is not None and member_id == caller.id):
        if caller is None:
            raise ServiceError("invalid_args", "memberId is required")
        if topic.visibility != TopicVisibility.PUBLIC and not may_manage_topic(actor=actor, topic=topic):
            raise Forbidden("forbidden", f'"{topic.name}" is {topic.visibility}: a lead or an admin adds its members')
        return _subscribe(topic, caller, chosen)
    if not may_manage_topic(actor=actor, topic=topic):
        raise Forbidden("forbidden", "only a topic lead or a mesh admin can add someone else")
    member = Member.objects.filter(mesh=actor.mesh, pk=member_id, revoked_at=None).first()
    if member is None:
        raise NotFound("member_not_found", "no such member in this mesh")
    subscription = _subscribe(topic, member, chosen)
    audit(actor, "topic_member_added", {"topicId": topic.id, "memberId": member.id})
    return subscription


@transaction.atomic
def topic_leave(*, actor: Actor, topic_ref: Any, member_id: Any = None) -> tuple[Topic, bool]:
    """The caller leaves, or a lead or manager removes `member_id`. The topic, and whether a subscription ended."""
    member_id = _clean_member_id(member_id)
    topic = _topic(actor, topic_ref)
    if member_id is None or member_id == actor.member_id:
        member = require_member(actor)
        removed, _ = TopicMember.objects.filter(topic=topic, member=member).delete()
        return topic, bool(removed)
    if not may_manage_topic(actor=actor, topic=topic):
        raise Forbidden("forbidden", "only a topic lead or a mesh admin can remove someone else")
    removed, _ = TopicMember.objects.filter(topic=topic, member_id=member_id).delete()
    if removed:
        audit(actor, "topic_member_removed", {"topicId": topic.id, "memberId": member_id})
    return topic, bool(removed)


def topic_mark_read(*, actor: Actor, topic_ref: Any) -> Topic:
    member = require_member(actor)
    topic = _topic(actor, topic_ref)
    TopicMember.objects.filter(topic=topic, member=member).update(last_read_at=timezone.now())
    return topic


def topic_subscribe_general(*, member: Member) -> TopicMember:
    """Every member is in its mesh's `general` (owners as lead), made on first need."""
    topic, _ = Topic.objects.get_or_create(mesh_id=member.mesh_id, name=GENERAL_TOPIC)
    return _subscribe(topic, member, _general_role(member))


def _general_role(member: Member) -> str:
    return TopicRole.LEAD if member.role == Role.OWNER else TopicRole.MEMBER


def topic_subscribe_general_bulk(*, members: list[Member]) -> None:
    """`topic_subscribe_general` for members created in bulk (benchmarks' rosters): one insert."""
    generals = {}
    for member in members:
        if member.mesh_id not in generals:
            generals[member.mesh_id], _ = Topic.objects.get_or_create(mesh_id=member.mesh_id, name=GENERAL_TOPIC)
    TopicMember.objects.bulk_create(
        (TopicMember(topic=generals[m.mesh_id], member=m, role=_general_role(m)) for m in members),
        batch_size=2000,
        ignore_conflicts=True,
    )


def topic_subscriptions_carry(*, from_member: Member, to_member: Member) -> None:
    """A member replaced by a new identity of the same person keeps its topics (and their roles)."""
    held = set(TopicMember.objects.filter(member=to_member).values_list("topic_id", flat=True))
    TopicMember.objects.bulk_create(
        TopicMember(topic_id=s.topic_id, member=to_member, role=s.role, last_read_at=s.last_read_at)
        for s in TopicMember.objects.filter(member=from_member).exclude(topic_id__in=held)
    )


def _topic(actor: Actor, topic_ref: Any) -> Topic:
    return require_topic(mesh_id=actor.mesh.id, topic_ref=topic_ref)
