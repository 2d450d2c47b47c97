"""`topic_create/list/join/leave/members/history/mark_read` (protocol.md §5.1) through meshes' topic services
and selectors, which hold the rules. Errors carry `_reqId` ([PY] §10 item 11)."""

from __future__ import annotations

from typing import Any

from broker import wire_topics
from broker.handlers.registry import handler, run_for_member
from meshes import selectors_topics
from meshes import services as mesh_services
from meshes.actors import Actor


def _topic(actor: Actor, frame: dict[str, Any]):
    return selectors_topics.require_topic(mesh_id=actor.mesh.id, topic_ref=frame.get("topic"))


def _create(actor: Actor, frame: dict[str, Any]) -> dict[str, Any]:
    topic, created = mesh_services.topic_create(
        actor=actor, name=frame.get("name"), description=frame.get("description"), visibility=frame.get("visibility")
    )
    return wire_topics.topic_created(topic, created)


def _list(actor: Actor, frame: dict[str, Any]) -> dict[str, Any]:
    return wire_topics.topic_list_response(selectors_topics.topics_for_member(actor=actor))


def _join(actor: Actor, frame: dict[str, Any]) -> dict[str, Any]:
    subscription = mesh_services.topic_join(
        actor=actor, topic_ref=frame.get("topic"), role=frame.get("role"), member_id=frame.get("memberId")
    )
    return wire_topics.topic_membership(
        "topic_joined", subscription.topic, memberId=subscription.member_id, role=subscription.role
    )


def _leave(actor: Actor, frame: dict[str, Any]) -> dict[str, Any]:
    topic, left = mesh_services.topic_leave(actor=actor, topic_ref=frame.get("topic"), member_id=frame.get("memberId"))
    return wire_topics.topic_membership("topic_left", topic, left=left)


def _mark_read(actor: Actor, frame: dict[str, Any]) -> dict[str, Any]:
    topic = mesh_services.topic_mark_read(actor=actor, topic_ref=frame.get("topic"))
    return wire_topics.topic_membership("topic_marked_read", topic)


def _members(actor: Actor, frame: dict[str, Any]) -> dict[str, Any]:
    topic = _topic(actor, frame)
    selectors_topics.require_topic_reader(actor=actor, topic=topic)
    return wire_topics.topic_members_response(frame.get("topic"), selectors_topics.topic_subscriptions(topic=topic))


def _history(actor: Actor, frame: dict[str, Any]) -> dict[str, Any]:
    topic = _topic(actor, frame)
    selectors_topics.require_topic_reader(actor=actor, topic=topic)
    messages = selectors_topics.topic_history(topic=topic, limit=frame.get("limit"), before_id=frame.get("beforeId"))
    return wire_topics.topic_history_response(frame.get("topic"), topic, messages)


@handler("topic_create")
async def handle_topic_create(conn, frame) -> None:
    await run_for_member(conn, frame, _create)


@handler("topic_list")
async def handle_topic_list(conn, frame) -> None:
    await run_for_member(conn, frame, _list)


@handler("topic_join")
async def handle_topic_join(conn, frame) -> None:
    await run_for_member(conn, frame, _join)


@handler("topic_leave")
async def handle_topic_leave(conn, frame) -> None:
    await run_for_member(conn, frame, _leave)


@handler("topic_mark_read")
async def handle_topic_mark_read(conn, frame) -> None:
    await run_for_member(conn, frame, _mark_read)


@handler("topic_members")
async def handle_topic_members(conn, frame) -> None:
    await run_for_member(conn, frame, _members)


@handler("topic_history")
async def handle_topic_history(conn, frame) -> None:
    await run_for_member(conn, frame, _history)
