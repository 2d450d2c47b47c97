"""Accepting sends (protocol.md §3.3, docs/wire-extensions.md): the checks that need no database, then a
batch of sends in one transaction. Durable first: a send is acknowledged only after its message and
per-recipient delivery rows committed; a retried clientMessageId gets the stored messageId and nothing new.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from django.utils import timezone

from broker import conf, wire
from broker.models import DeliveryState
from broker.services.bulk import (
    DeliveryRow,
    MessageRow,
    messages_by_client_id,
    pending_counts,
    rows_insert,
    topic_history_row,
)
from broker.services.routing import (
    NO_PEER,
    RECIPIENT_FULL,
    Reach,
    Sender,
    SendInput,
    SendRejected,
    plan_direct,
    plan_multicast,
    routing_context,
)
from broker.services.topic_routing import is_topic_target, plan_topic, topic_routes
from meshes.text import storable
from protocol.ids import new_id
from protocol.vocabulary import PRIORITIES, Priority, is_direct_target

CLIENT_MESSAGE_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
_PRIORITIES = frozenset(PRIORITIES)  # a set: per-message checks must not rebuild a list


@dataclass
class SendOutcome:
    message_id: str = ""
    error: str | None = None
    reject_reason: str | None = None
    frame: dict[str, Any] | None = None
    reach: Reach = field(default_factory=Reach)  # who it reached; its pre-claimed rows are pushed from memory
    fanout: int = 0  # delivery rows written: what the send costs the sender's rate limit


def js_length(text: str) -> int:
    """JavaScript string length (UTF-16 code units), as the reference measures payloads."""
    if text.isascii():  # C-speed fast path for the usual base64 payloads
        return len(text)
    return len(text.encode("utf-16-le")) // 2


def check_send(frame: dict[str, Any], sender: Sender) -> SendInput:
    """Shape and size checks that need no database (§3.3 step 2)."""
    target, nonce, ciphertext = frame.get("targetSpec"), frame.get("nonce"), frame.get("ciphertext")
    if not isinstance(target, str) or not target or not isinstance(nonce, str) or not isinstance(ciphertext, str):
        raise SendRejected("invalid send: targetSpec, nonce and ciphertext are required strings", "parse_or_handler")
    if not (storable(target) and storable(nonce) and storable(ciphertext)):
        raise SendRejected("invalid send: NUL characters and unpaired surrogates cannot be stored", "parse_or_handler")
    size = js_length(ciphertext) + js_length(nonce) + js_length(target)
    limit = conf.max_message_bytes()
    if size > limit:
        raise SendRejected(f"payload too large: {size} bytes > MAX_MESSAGE_BYTES={limit}", "too_large")
    priority = frame.get("priority", Priority.NEXT)
    if priority is None:
        priority = Priority.NEXT
    if not isinstance(priority, str) or priority not in _PRIORITIES:  # a list or dict is unhashable
        raise SendRejected("invalid priority: must be now, next or low", "parse_or_handler")
    client_message_id = frame.get("clientMessageId")
    if client_message_id is not None and (
        not isinstance(client_message_id, str) or not CLIENT_MESSAGE_ID.fullmatch(client_message_id)
    ):
        raise SendRejected("invalid clientMessageId: 1-64 chars [A-Za-z0-9_.:-]", "parse_or_handler")
    if target == "#":
        raise SendRejected('topic "" not found', "no_recipient")
    if not (target in ("*", "@all") or target[0] in "@#" or is_direct_target(target)):
        raise SendRejected(NO_PEER, "no_recipient")
    return SendInput(sender, target, str(priority), nonce, ciphertext, client_message_id)


QUEUE_FULL = "recipient_queue_full: {cap} of your messages already wait for this member; retry once it reads them"


@dataclass
class _Accepted:
    item: SendInput
    outcome: SendOutcome
    message: MessageRow
    rows: list[DeliveryRow]
    topic_id: str | None = None


def messages_accept(*, inputs: list[SendInput], worker_id: str) -> list[SendOutcome]:
    """Accept a batch of sends: resolve recipients, cap what waits per recipient, insert messages and deliveries in
    one atomic write (the reads before it need no transaction: each statement sees what is committed anyway)."""
    now = timezone.now()
    ctx = routing_context(inputs=inputs, worker_id=worker_id, now=now)
    topics = topic_routes(inputs=inputs)
    existing = messages_by_client_id(
        {(item.sender.member_id, item.client_message_id) for item in inputs if item.client_message_id}
    )
    accepted: list[_Accepted] = []
    retries: list[SendOutcome] = []  # retries answered with a messageId this very batch may still refuse
    outcomes = []
    for item in inputs:
        outcome = SendOutcome()
        outcomes.append(outcome)
        sender = item.sender
        if item.client_message_id and (sender.member_id, item.client_message_id) in existing:
            outcome.message_id = existing[(sender.member_id, item.client_message_id)]
            retries.append(outcome)
            continue  # idempotent retry: same messageId, no second delivery
        route = topics.get((sender.mesh_id, item.target_spec[1:])) if is_topic_target(item.target_spec) else None
        message = MessageRow(
            id=new_id(),
            mesh_id=sender.mesh_id,
            sender_member_id=sender.member_id,
            sender_session_pubkey=sender.session_pubkey,
            sender_pubkey=sender.session_pubkey or sender.member_pubkey,
            target_spec=route.target_spec if route is not None else item.target_spec,  # a topic by its id
            priority=item.priority,
            nonce=item.nonce,
            ciphertext=item.ciphertext,
            client_message_id=item.client_message_id,
            created_at=now,
            subtype=item.subtype,
        )
        try:
            if is_topic_target(item.target_spec):
                planned = plan_topic(item, ctx, route, message.id, outcome.reach)
            elif is_direct_target(item.target_spec):
                planned = plan_direct(item, ctx, message.id, outcome.reach)
            else:
                planned = plan_multicast(item, ctx, message.id, outcome.reach)
        except SendRejected as rejected:
            outcome.error, outcome.reject_reason = rejected.text, rejected.reason
            outcome.reach.clear()
            continue
        if item.client_message_id:
            existing[(sender.member_id, item.client_message_id)] = message.id
        accepted.append(_Accepted(item, outcome, message, planned, route.topic_id if route is not None else None))
    _cap_waiting_rows(accepted)
    refused = {entry.message.id: entry.outcome for entry in accepted if entry.outcome.error is not None}
    for retry in retries:  # a retry of a send this batch refused is refused the same way, not given its id
        if retry.message_id in refused:
            retry.error, retry.reject_reason = refused[retry.message_id].error, refused[retry.message_id].reject_reason
            retry.message_id = ""
    messages: list[MessageRow] = []
    deliveries: list[DeliveryRow] = []
    history: list[tuple] = []
    for entry in accepted:
        if entry.outcome.error is not None:
            continue
        messages.append(entry.message)
        if entry.topic_id is not None:
            history.append(topic_history_row(entry.message, entry.topic_id))
        deliveries.extend(entry.rows)
        entry.outcome.fanout = len(entry.rows)
        entry.outcome.message_id = entry.message.id
        entry.outcome.frame = wire.message_push(entry.message)
    rows_insert(messages=messages, deliveries=deliveries, history=history)
    return outcomes


def _cap_waiting_rows(accepted: list[_Accepted]) -> None:
    """[PY] One sender may have at most BROKER_MAX_QUEUED_PER_RECIPIENT rows waiting (pending) for one member: a
    direct send past it is refused with a clear ack error; a multicast skips those members and its ack says how
    many (`queueFull`). Rows handed to a live connection are not waiting and do not count."""

    def waiting(entry: _Accepted):
        return [row for row in entry.rows if row.state == DeliveryState.PENDING]

    pairs = {(entry.item.sender.member_id, row.recipient_member_id) for entry in accepted for row in waiting(entry)}
    if not pairs:
        return
    cap = conf.max_queued_per_recipient()
    counts = pending_counts(pairs)
    for entry in accepted:
        sender_id = entry.item.sender.member_id
        kept, full = [], 0
        for row in entry.rows:
            if row.state == DeliveryState.PENDING:
                key = (sender_id, row.recipient_member_id)
                if counts.get(key, 0) >= cap:
                    full += 1
                    name = entry.outcome.reach.recipients.get(row.recipient_member_id, ("", ""))[0]
                    entry.outcome.reach.recipients[row.recipient_member_id] = (name, RECIPIENT_FULL)
                    continue
                counts[key] = counts.get(key, 0) + 1
            kept.append(row)
        if not full:
            continue
        if is_direct_target(entry.item.target_spec):
            entry.outcome.error, entry.outcome.reject_reason = QUEUE_FULL.format(cap=cap), "queue_full"
            entry.outcome.reach.clear()
        else:
            entry.rows = kept
