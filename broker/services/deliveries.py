"""The delivery state machine (protocol.md §3.8–3.9): pending → in flight (claimed by one presence) →
delivered. Claims (drains), delivered marks, release of a closed claimer's rows, retransmits of stale claims,
retention, and the counts the sweep needs. Nothing acknowledged to a sender is ever dropped: rows only move
forward, or back to pending when their claimer is gone.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from broker import conf, metrics, wire
from broker.models import Delivery, DeliveryState, Message, Presence, Priority, Status
from broker.services.bulk import mark_delivered_postgres
from broker.services.liveness import effective_status
from broker.services.routing import message_capability
from meshes.models import Member
from protocol import vocabulary

CLAIM_LIMIT = 500


@dataclass(frozen=True)
class DeliveredMark:
    presence_id: str
    member_id: str
    keys: tuple[str, ...]
    message_ids: tuple[str, ...]
    by_claim: bool  # True: rows this presence wrote (ack-less); False: a client push_ack


def undelivered():
    """Where every query of pending or in-flight rows starts: the state indexes are partial (`state < 2`), and
    SQLite uses a partial index only when the query repeats its condition word for word."""
    return Delivery.objects.filter(state__lt=DeliveryState.DELIVERED)


def _addressed_to(member_id: str, keys: list[str]):
    """Rows for the member as a whole, or for one of the connection's session keys."""
    return Q(recipient_member_id=member_id) & (Q(recipient_session__isnull=True) | Q(recipient_session__in=keys))


@transaction.atomic
def deliveries_claim(*, presence_id: str, member_id: str, keys: list[str]) -> list[dict[str, Any]]:
    """A drain: atomically claim what this connection may take now, oldest first. Disjoint across drains."""
    now = timezone.now()
    presence = (
        Presence.objects.filter(pk=presence_id, disconnected_at=None)
        .values("status", "status_source", "status_updated_at", "member__peer_grants")  # grants: no second query
        .first()
    )
    if presence is None:
        return []
    status = effective_status(
        status=presence["status"], source=presence["status_source"], updated_at=presence["status_updated_at"], now=now
    )
    pending = undelivered().filter(_addressed_to(member_id, keys), state=DeliveryState.PENDING)
    if status != Status.IDLE:
        pending = pending.filter(Q(gated=False) | Q(priority=Priority.NOW))
    ids = list(pending.order_by("id").select_for_update(skip_locked=True).values_list("id", flat=True)[:CLAIM_LIMIT])
    if not ids:
        return []
    undelivered().filter(pk__in=ids, state=DeliveryState.PENDING).update(
        state=DeliveryState.IN_FLIGHT, claimed_by=presence_id, claimed_at=now
    )
    rows = Message.objects.filter(deliveries__id__in=ids, deliveries__claimed_by=presence_id).order_by("created_at", "id")
    allowed = _allowed_by_grants(list(rows.distinct()), grants=presence["member__peer_grants"], member_id=member_id,
                                 claimed_ids=ids)
    return [wire.message_push(m) for m in allowed]


def _allowed_by_grants(messages: list[Message], *, grants: Any, member_id: str, claimed_ids: list[int]) -> list[Message]:
    """[PY] §10 item 6: a drain applies the recipient's grants as they are now (a sender blocked after its
    message was queued is blocked for it too). A refused row is dropped, as a live push would have been."""
    if not grants:
        return messages
    senders = {m.sender_member_id for m in messages if m.sender_member_id != member_id}
    member_keys = dict(Member.objects.filter(pk__in=senders).values_list("id", "pubkey"))
    allowed, refused = [], []
    for message in messages:
        capability = message_capability(target_spec=message.target_spec, subtype=message.subtype)
        if capability is None or message.sender_member_id == member_id or vocabulary.grants_allow(
            grants, sender_keys=(member_keys.get(message.sender_member_id), message.sender_session_pubkey),
            capability=capability,
        ):
            allowed.append(message)
        else:
            refused.append(message.id)
            metrics.messages_dropped_by_grant.labels(capability).inc()
    if refused:
        Delivery.objects.filter(pk__in=claimed_ids, message_id__in=refused).delete()
    return allowed


def deliveries_mark_delivered(*, marks: list[DeliveredMark]) -> int:
    """Mark a whole batch delivered: on Postgres at most two UPDATEs whatever the number of sockets in the batch (one
    round trip per socket was most of a burst's mark time), each its own transaction (marking is idempotent, so
    the two need not commit together); elsewhere one UPDATE per socket in one transaction."""
    now = timezone.now()
    grouped: dict[tuple[str, bool], tuple[DeliveredMark, set[str]]] = {}
    for mark in marks:
        key = (mark.presence_id, mark.by_claim)
        if key not in grouped:
            grouped[key] = (mark, set())
        grouped[key][1].update(mark.message_ids)
    if connection.vendor == "postgresql":
        by_claim, by_ack = [], []
        for (presence_id, claimed), (mark, message_ids) in grouped.items():
            if claimed:
                by_claim.extend((message_id, presence_id) for message_id in message_ids)
            else:
                by_ack.extend((message_id, mark.member_id, mark.keys) for message_id in message_ids)
        return mark_delivered_postgres(by_claim=by_claim, by_ack=by_ack, now=now)
    done = 0
    with transaction.atomic():
        for (presence_id, claimed), (mark, message_ids) in grouped.items():
            rows = undelivered().filter(message_id__in=message_ids)
            if claimed:
                rows = rows.filter(claimed_by=presence_id)
            else:
                rows = rows.filter(_addressed_to(mark.member_id, list(mark.keys)))
            done += rows.update(state=DeliveryState.DELIVERED, delivered_at=now)
    return done


def deliveries_release(*, presence_id: str) -> int:
    """Unacknowledged rows of a closed connection go back to pending (re-sent on the next drain)."""
    return undelivered().filter(state=DeliveryState.IN_FLIGHT, claimed_by=presence_id).update(
        state=DeliveryState.PENDING, claimed_by=None, claimed_at=None
    )


def deliveries_release_orphans(*, member_id: str | None = None) -> int:
    """In-flight rows whose claimer is gone (closed, or its worker died and the lease expired)."""
    orphans = undelivered().filter(state=DeliveryState.IN_FLIGHT)
    if member_id is not None:
        orphans = orphans.filter(recipient_member_id=member_id)
    orphans = orphans.exclude(claimed_by__in=Presence.objects.filter(disconnected_at=None).values("id"))
    return orphans.update(state=DeliveryState.PENDING, claimed_by=None, claimed_at=None)


@transaction.atomic
def deliveries_retransmit(
    *, worker_id: str, older_than_seconds: float, hold: Callable[[str, str], bool] | None = None
) -> list[tuple[str, dict[str, Any]]]:
    """In-flight rows held by this worker's connections for too long: never written (a lost layer message)
    or written but not acknowledged. Re-push them (clients dedupe by messageId).

    `hold(presence_id, message_id)` says the worker knows the push is not lost (its ack is queued, or it
    was written recently): such rows are postponed (their clock restarts) instead of re-sent."""
    now = timezone.now()
    rows = list(
        undelivered()
        .select_for_update(skip_locked=True, of=("self",))
        .filter(
            state=DeliveryState.IN_FLIGHT,
            claimed_at__lt=now - timedelta(seconds=older_than_seconds),
            claimed_by__in=Presence.objects.filter(worker_id=worker_id, disconnected_at=None).values("id"),
        )
        .select_related("message")
        .order_by("id")[:CLAIM_LIMIT]
    )
    if not rows:
        return []
    Delivery.objects.filter(pk__in=[row.pk for row in rows]).update(claimed_at=now)
    if hold is not None:
        rows = [row for row in rows if not hold(row.claimed_by, row.message_id)]
    return [(row.claimed_by, wire.message_push(row.message)) for row in rows]


def pending_recipients(*, worker_id: str) -> list[tuple[str, str | None]]:
    """(member, session key) pairs with pending rows whose member has a connection on this worker."""
    local_members = Presence.objects.filter(worker_id=worker_id, disconnected_at=None).values("member_id")
    return list(
        undelivered()
        .filter(state=DeliveryState.PENDING, recipient_member_id__in=local_members)
        .values_list("recipient_member_id", "recipient_session")
        .distinct()
    )


RETENTION_BATCH = 5000


def messages_expire(*, batch_size: int = RETENTION_BATCH, max_batches: int | None = None) -> int:
    """Delete messages older than the retention with their delivery rows, oldest first, one short transaction per
    batch: no lock is held for long and sends go on between batches (one DELETE of a week of a busy mesh's rows
    would hold its locks and its memory for minutes). At most `max_batches` batches; returns how many went."""
    cutoff = timezone.now() - timedelta(days=conf.retention_days())
    deleted = 0
    for _ in range(max_batches) if max_batches is not None else itertools.count():
        ids = list(
            Message.objects.filter(created_at__lt=cutoff)
            .order_by("created_at")
            .values_list("id", flat=True)[:batch_size]
        )
        if not ids:
            return deleted
        with transaction.atomic():
            Delivery.objects.filter(message_id__in=ids).delete()
            Message.objects.filter(id__in=ids).only("id").delete()
        deleted += len(ids)
    return deleted


def queue_depth() -> int:
    return undelivered().count()
