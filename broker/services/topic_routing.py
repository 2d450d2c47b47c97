"""Who a topic send reaches ([PY] protocol.md §3.7, §10 item 1): every live session of the topic's members
except the sending one, pushed at once; members who are offline read it from the topic's history."""

from __future__ import annotations

from dataclasses import dataclass

from broker.services.bulk import DeliveryRow
from broker.services.routing import Reach, RoutingContext, SendInput, SendRejected, live_multicast_delivery
from meshes.selectors_topics import topic_for_ref, topic_member_ids


@dataclass(frozen=True)
class TopicRoute:
    topic_id: str
    name: str
    member_ids: frozenset[str]

    @property
    def target_spec(self) -> str:
        return f"#{self.topic_id}"


def is_topic_target(target_spec: str) -> bool:
    return target_spec.startswith("#")


def topic_routes(*, inputs: list[SendInput]) -> dict[tuple[str, str], TopicRoute | None]:
    """(mesh id, `#` reference) → the topic it names (by id or name) and its members; None when there is none."""
    refs = {(item.sender.mesh_id, item.target_spec[1:]) for item in inputs if is_topic_target(item.target_spec)}
    if not refs:
        return {}
    topics = {ref: topic_for_ref(mesh_id=ref[0], topic_ref=ref[1]) for ref in refs}
    members = topic_member_ids(topic_ids={topic.id for topic in topics.values() if topic is not None})
    return {
        ref: TopicRoute(topic.id, topic.name, frozenset(members[topic.id])) if topic is not None else None
        for ref, topic in topics.items()
    }


def plan_topic(
    item: SendInput, ctx: RoutingContext, route: TopicRoute | None, message_id: str, reach: Reach
) -> list[DeliveryRow]:
    sender = item.sender
    if route is None:
        raise SendRejected(f'topic "{item.target_spec[1:]}" not found', "no_recipient")
    if sender.member_id not in route.member_ids:
        raise SendRejected(f"not a member of #{route.name}: join it first (topic join {route.name})", "blocked")
    deliveries = []
    for presence in ctx.live.get(sender.mesh_id, []):
        if presence["id"] == sender.presence_id or presence["member_id"] not in route.member_ids:
            continue
        delivery = live_multicast_delivery(item, ctx, presence, message_id, reach)
        if delivery is not None:
            deliveries.append(delivery)
    return deliveries
