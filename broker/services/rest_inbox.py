"""A bot's inbox over REST and its live stream (docs/wire-extensions.md "REST for bots"): what waits for the key's
member, in delivery order with a stable cursor, acknowledged explicitly (nothing is lost between polls); and the
topic messages a key may read, after a history sequence number. Pushes have the WebSocket's shape."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone

from broker import wire
from broker.models import DeliveryState
from broker.services.deliveries import undelivered
from meshes.models import Topic, TopicMember, TopicMessage, TopicVisibility

PAGE_MAX = 200


def inbox_page(*, member_id: str, after: int = 0, limit: int = 50) -> list[dict[str, Any]]:
    """Undelivered messages for the member as a whole, oldest first, each with its `cursor`."""
    rows = (
        undelivered().filter(recipient_member_id=member_id, recipient_session__isnull=True, id__gt=after)
        .select_related("message").order_by("id")[: max(1, min(PAGE_MAX, limit))]
    )
    return [{**wire.message_push(row.message), "cursor": str(row.id)} for row in rows]


@transaction.atomic
def inbox_ack(*, member_id: str, message_ids: list[str]) -> int:
    """Marks the member's rows of these messages delivered; acknowledging twice is harmless."""
    return undelivered().filter(recipient_member_id=member_id, recipient_session__isnull=True,
                                message_id__in=message_ids).update(state=DeliveryState.DELIVERED,
                                                                   delivered_at=timezone.now())


def readable_topic_ids(*, mesh_id: str, member_id: str | None, scopes: list[str] | None, manager: bool) -> list[str]:
    topics = Topic.objects.filter(mesh_id=mesh_id, archived_at=None)
    if scopes is not None:
        topics = topics.filter(name__in=scopes)
    if not manager:
        joined = TopicMember.objects.filter(member_id=member_id).values("topic_id") if member_id else []
        visible = [t for t in topics if t.visibility == TopicVisibility.PUBLIC or (member_id and t.id in
                   {row["topic_id"] for row in joined})]
        return [t.id for t in visible]
    return list(topics.values_list("id", flat=True))


def topic_rows_after(*, topic_ids: list[str], after_seq: int, limit: int = PAGE_MAX) -> list[TopicMessage]:
    return list(TopicMessage.objects.filter(topic_id__in=topic_ids, seq__gt=after_seq).order_by("seq")[:limit])


def latest_topic_seq() -> int:
    row = TopicMessage.objects.order_by("-seq").values_list("seq", flat=True).first()
    return int(row or 0)
