"""Messages and deliveries (protocol.md §3, docs/wire-extensions.md).

Durable first: a send is acknowledged only after its message and per-recipient delivery rows committed.
A delivery is pending, in flight (claimed by one presence), or delivered (written to an ack-less socket, or
`push_ack`ed). In-flight rows whose claimer disconnected go back to pending, so nothing acknowledged is lost.
"""

from __future__ import annotations

import operator
import re
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.db import connection, transaction
from django.db.models import Max, Q
from django.utils import timezone

from broker import conf, wire
from broker.models import Delivery, DeliveryState, Message, PeerState, Presence, Priority, Status, session_key
from broker.services.presence import effective_status, live_presences
from meshes.models import Member
from meshes.text import storable
from protocol.ids import new_id

CLIENT_MESSAGE_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
DIRECT_TARGET = re.compile(r"^[0-9a-fA-F]{64}$")
DEFAULT_GRANTS = ("read", "dm", "broadcast", "state-read")
NO_PEER = "no connected peer for target (not online, or targetSpec is your own key without another session)"
BLOCKED = "blocked by recipient grants (sender lacks dm capability)"
CLAIM_LIMIT = 500
# Plain constants for per-message checks: Django's `Choices.values` rebuilds a list from the enum on every access.
PRIORITIES = frozenset(Priority.values)
IDLE, NOW = str(Status.IDLE), str(Priority.NOW)


class SendRejected(Exception):
    def __init__(self, text: str, reason: str):
        super().__init__(text)
        self.text = text
        self.reason = reason  # metrics label


@dataclass(frozen=True)
class Sender:
    mesh_id: str
    member_id: str
    member_pubkey: str
    session_pubkey: str | None
    presence_id: str


@dataclass
class SendInput:
    sender: Sender
    target_spec: str
    priority: str
    nonce: str
    ciphertext: str
    client_message_id: str | None


@dataclass
class SendOutcome:
    message_id: str = ""
    error: str | None = None
    reject_reason: str | None = None
    frame: dict[str, Any] | None = None
    # Pre-claimed rows, pushed straight from memory: (node id, presence id). No drain query needed.
    claimed: list[tuple[str, str]] = field(default_factory=list)
    doorbells: set[tuple[str, str]] = field(default_factory=set)  # (node id, presence id) to drain
    recipients: int = 0


def push_frame(message: Message) -> dict[str, Any]:
    """The `push` a recipient gets for a stored message (§3.8); one builder for every delivery path."""
    return wire.push(
        message_id=message.id,
        mesh_id=message.mesh_id,
        sender_pubkey=message.sender_pubkey,
        priority=message.priority,
        nonce=message.nonce,
        ciphertext=message.ciphertext,
        created_at=message.created_at,
    )


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
    if not isinstance(priority, str) or priority not in PRIORITIES:  # a list or dict is unhashable
        raise SendRejected("invalid priority: must be now, next or low", "parse_or_handler")
    client_message_id = frame.get("clientMessageId")
    if client_message_id is not None and (
        not isinstance(client_message_id, str) or not CLIENT_MESSAGE_ID.fullmatch(client_message_id)
    ):
        raise SendRejected("invalid clientMessageId: 1-64 chars [A-Za-z0-9_.:-]", "parse_or_handler")
    if target.startswith("#"):
        raise SendRejected("topics are not supported by this broker", "no_recipient")
    if not (target in ("*", "@all") or target.startswith("@") or DIRECT_TARGET.fullmatch(target)):
        raise SendRejected(NO_PEER, "no_recipient")
    return SendInput(sender, target, priority, nonce, ciphertext, client_message_id)


def grants_allow(grants: Any, *, sender: Sender, capability: str) -> bool:
    """Member-key entry, else session-key entry, else the default set ([PY] §10 item 6)."""
    if isinstance(grants, dict):
        for key in (sender.member_pubkey, sender.session_pubkey):
            if key and key in grants:
                entry = grants[key]
                return isinstance(entry, list) and capability in entry
    return capability in DEFAULT_GRANTS


def group_matches(groups: Any, name: str) -> bool:
    """`@a` reaches members of `a`, `a/b`, `a/b/c` (hierarchical groups, §3.6)."""
    if not isinstance(groups, list):
        return False
    prefix = name + "/"
    return any(
        isinstance(g, dict) and isinstance(g.get("name"), str) and (g["name"] == name or g["name"].startswith(prefix))
        for g in groups
    )


def _can_take_now(presence: dict[str, Any], priority: str, now: datetime) -> bool:
    status = effective_status(
        status=presence["status"], source=presence["status_source"], updated_at=presence["status_updated_at"], now=now
    )
    return status == IDLE or priority == NOW


MESSAGE_COLUMNS = (
    "id", "mesh_id", "sender_member_id", "sender_session_pubkey", "sender_pubkey", "target_spec", "priority",
    "nonce", "ciphertext", "client_message_id", "created_at",
)  # fmt: skip
DELIVERY_COLUMNS = (
    "message_id", "recipient_member_id", "recipient_session", "gated", "priority", "state", "claimed_by",
    "claimed_at", "delivered_at",
)  # fmt: skip


@dataclass(slots=True)
class _MessageRow:
    """Plain rows instead of model instances: the hot path inserts thousands per second."""

    id: str
    mesh_id: str
    sender_member_id: str
    sender_session_pubkey: str | None
    sender_pubkey: str
    target_spec: str
    priority: str
    nonce: str
    ciphertext: str
    client_message_id: str | None
    created_at: datetime


@dataclass(slots=True)
class _DeliveryRow:
    message_id: str
    recipient_member_id: str
    recipient_session: str | None = None
    gated: bool = True
    priority: str = Priority.NEXT
    state: int = DeliveryState.PENDING
    claimed_by: str | None = None
    claimed_at: datetime | None = None
    delivered_at: datetime | None = None


_message_values = operator.attrgetter(*MESSAGE_COLUMNS)  # row → tuple in C, in COPY column order
_delivery_values = operator.attrgetter(*DELIVERY_COLUMNS)


def _bulk_insert(model, columns: tuple[str, ...], rows: list[tuple]) -> None:
    """COPY on Postgres, executemany elsewhere; joins the caller's transaction."""
    if not rows:
        return
    quote = connection.ops.quote_name
    table = quote(model._meta.db_table)
    names = ", ".join(quote(c) for c in columns)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            with cursor.cursor.copy(f"COPY {table} ({names}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
        else:
            adapt = connection.ops.adapt_datetimefield_value
            rows = [tuple(adapt(v) if isinstance(v, datetime) else v for v in row) for row in rows]
            cursor.executemany(f"INSERT INTO {table} ({names}) VALUES ({', '.join(['%s'] * len(columns))})", rows)


@dataclass
class _BatchContext:
    now: datetime
    node_id: str
    live: dict[str, list[dict[str, Any]]]
    members: dict[str, dict[str, Any]]
    member_by_pubkey: dict[tuple[str, str], dict[str, Any]]
    session_owner: dict[tuple[str, str], str]
    saved: dict[str, dict[str, Any]]
    live_by_member: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    live_by_session: dict[tuple[str, str], list[dict[str, Any]]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for rows in self.live.values():
            for p in rows:
                self.live_by_member.setdefault(p["member_id"], []).append(p)
                if p["session_pubkey"]:
                    self.live_by_session.setdefault((p["mesh_id"], p["session_pubkey"]), []).append(p)


MEMBER_FIELDS = ("id", "mesh_id", "pubkey", "peer_grants", "default_groups")
PRESENCE_FIELDS = (
    "id", "mesh_id", "member_id", "session_id", "session_pubkey", "groups", "visible", "node_id",
    "status", "status_source", "status_updated_at",
)  # fmt: skip


def _load_context(inputs: list[SendInput], node_id: str, now: datetime) -> _BatchContext:
    """What routing a batch needs. A batch of direct messages reads only its targets' member and presence rows,
    so its cost does not grow with the mesh; a multicast needs every member and connection of the mesh."""
    mesh_ids = {item.sender.mesh_id for item in inputs}
    targets = {item.target_spec for item in inputs}
    direct_only = all(DIRECT_TARGET.fullmatch(target) for target in targets)
    presences = live_presences(now=now).filter(mesh_id__in=mesh_ids)
    if direct_only:
        presences = presences.filter(Q(member_pubkey__in=targets) | Q(session_pubkey__in=targets))
    live: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in presences.order_by("connected_at").values(*PRESENCE_FIELDS):
        live[row["mesh_id"]].append(row)
    mesh_members = Member.objects.filter(mesh_id__in=mesh_ids, revoked_at=None, pubkey__isnull=False)
    wanted = mesh_members
    if direct_only:  # the targets themselves, and the owners of targeted session keys
        wanted = mesh_members.filter(Q(pubkey__in=targets) | Q(id__in={p["member_id"] for r in live.values() for p in r}))
    members, by_pubkey = {}, {}
    for row in wanted.values(*MEMBER_FIELDS):
        members[row["id"]] = row
        by_pubkey[(row["mesh_id"], row["pubkey"])] = row
    session_owner = {(p["mesh_id"], p["session_pubkey"]): p["member_id"] for rows in live.values() for p in rows if p["session_pubkey"]}
    unresolved = {
        item.target_spec
        for item in inputs
        if DIRECT_TARGET.fullmatch(item.target_spec)
        and (item.sender.mesh_id, item.target_spec) not in by_pubkey
        and (item.sender.mesh_id, item.target_spec) not in session_owner
    }
    if unresolved:  # an offline session key: its messages wait for that session to come back
        history = list(
            Presence.objects.filter(mesh_id__in=mesh_ids, session_pubkey__in=unresolved)
            .order_by("connected_at")
            .values("mesh_id", "session_pubkey", "member_id")
        )
        missing = {row["member_id"] for row in history} - members.keys()
        if missing and direct_only:
            for row in mesh_members.filter(id__in=missing).values(*MEMBER_FIELDS):
                members[row["id"]] = row
                by_pubkey[(row["mesh_id"], row["pubkey"])] = row
        for row in history:
            if row["member_id"] in members:
                session_owner[(row["mesh_id"], row["session_pubkey"])] = row["member_id"]
    saved = {}
    if not direct_only:
        for row in PeerState.objects.filter(mesh_id__in=mesh_ids).values("member_id", "groups", "visible"):
            saved[row["member_id"]] = row
    return _BatchContext(now, node_id, live, members, by_pubkey, session_owner, saved)


def _route(outcome: SendOutcome, ctx: _BatchContext, presence: dict[str, Any], delivery: _DeliveryRow, claim: bool) -> None:
    """Pre-claim a row for a live connection: its worker pushes it from memory, without a drain query.

    If the push never happens (the layer dropped it, the socket closed), the row is re-sent by the
    retransmit sweep of the claimer's worker or released when the claimer closes.
    """
    if claim:
        delivery.state = DeliveryState.IN_FLIGHT
        delivery.claimed_by = presence["id"]
        delivery.claimed_at = ctx.now
        outcome.claimed.append((presence["node_id"], presence["id"]))
    else:
        outcome.doorbells.add((presence["node_id"], presence["id"]))


def _plan_direct(item: SendInput, ctx: _BatchContext, message: _MessageRow, outcome: SendOutcome) -> list[_DeliveryRow]:
    sender, target = item.sender, item.target_spec
    member = ctx.member_by_pubkey.get((sender.mesh_id, target))
    if member is not None:
        candidates = [p for p in ctx.live_by_member.get(member["id"], ()) if p["id"] != sender.presence_id]
        recipient_session = None
        if member["id"] == sender.member_id:
            # To one's own member key: another session of ours, never the sending connection itself.
            if not candidates:
                raise SendRejected(NO_PEER, "no_recipient")
            recipient_session = session_key(candidates[0]["session_pubkey"], candidates[0]["session_id"])
            candidates = candidates[:1]
    else:
        owner_id = ctx.session_owner.get((sender.mesh_id, target))
        if owner_id is None or target == sender.session_pubkey:
            raise SendRejected(NO_PEER, "no_recipient")
        member = ctx.members[owner_id]
        candidates = [
            p for p in ctx.live_by_session.get((sender.mesh_id, target), ()) if p["id"] != sender.presence_id
        ]
        recipient_session = target
    if not grants_allow(member["peer_grants"], sender=sender, capability="dm"):
        raise SendRejected(BLOCKED, "blocked")
    delivery = _DeliveryRow(
        message_id=message.id,
        recipient_member_id=member["id"],
        recipient_session=recipient_session,
        gated=True,
        priority=item.priority,
    )
    ready = [p for p in candidates if _can_take_now(p, item.priority, ctx.now)]
    if ready:  # exactly one session of the member gets it; prefer one on this worker
        ready.sort(key=lambda p: p["node_id"] != ctx.node_id)
        _route(outcome, ctx, ready[0], delivery, claim=True)
    return [delivery]


def _plan_multicast(item: SendInput, ctx: _BatchContext, message: _MessageRow, outcome: SendOutcome) -> list[_DeliveryRow]:
    sender, target = item.sender, item.target_spec
    group = None if target in ("*", "@all") else target[1:]
    deliveries = []
    online_members = set()
    for presence in ctx.live.get(sender.mesh_id, []):
        online_members.add(presence["member_id"])
        if presence["id"] == sender.presence_id or not presence["visible"]:
            continue
        if group is not None and not group_matches(presence["groups"], group):
            continue
        member = ctx.members.get(presence["member_id"])
        if member is None or not grants_allow(member["peer_grants"], sender=sender, capability="broadcast"):
            continue
        delivery = _DeliveryRow(
            message_id=message.id,
            recipient_member_id=member["id"],
            recipient_session=session_key(presence["session_pubkey"], presence["session_id"]),
            gated=False,
            priority=item.priority,
        )
        _route(outcome, ctx, presence, delivery, claim=True)
        deliveries.append(delivery)
    # Better than the reference: matching members who are offline get it when they come back.
    for member in ctx.members.values():
        if member["mesh_id"] != sender.mesh_id or member["id"] in online_members or member["id"] == sender.member_id:
            continue
        saved = ctx.saved.get(member["id"])
        if saved is not None and not saved["visible"]:
            continue
        groups = saved["groups"] if saved and saved["groups"] else member["default_groups"]
        if group is not None and not group_matches(groups, group):
            continue
        if not grants_allow(member["peer_grants"], sender=sender, capability="broadcast"):
            continue
        deliveries.append(
            _DeliveryRow(message_id=message.id, recipient_member_id=member["id"], gated=False, priority=item.priority)
        )
    return deliveries


_BY_CLIENT_ID_SQL = (
    "SELECT m.sender_member_id, m.client_message_id, m.id FROM unnest(%s::text[], %s::text[]) AS k(sender, client)"
    " JOIN {t} AS m ON m.sender_member_id = k.sender AND m.client_message_id = k.client"
    " WHERE m.client_message_id IS NOT NULL"
)


def _messages_by_client_id(keys: set[tuple[str, str]]) -> dict[tuple[str, str], str]:
    """(sender member, clientMessageId) → messageId of what is already stored, found pair by pair through the
    unique index. Two IN lists (any sender × any id) made Postgres scan the whole message table instead."""
    if not keys:
        return {}
    pairs = sorted(keys)
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                _BY_CLIENT_ID_SQL.format(t=connection.ops.quote_name(Message._meta.db_table)),
                [[sender for sender, _ in pairs], [client for _, client in pairs]],
            )
            return {(sender, client): message_id for sender, client, message_id in cursor.fetchall()}
    found = {}
    for start in range(0, len(pairs), 100):  # a bounded OR per query: SQLite limits expression depth
        match = Q()
        for sender, client in pairs[start : start + 100]:
            match |= Q(sender_member_id=sender, client_message_id=client)
        for row in Message.objects.filter(match).values_list("sender_member_id", "client_message_id", "id"):
            found[(row[0], row[1])] = row[2]
    return found


@transaction.atomic
def messages_accept(*, inputs: list[SendInput], node_id: str) -> list[SendOutcome]:
    """Accept a batch of sends in one transaction: resolve recipients, insert messages and deliveries."""
    now = timezone.now()
    ctx = _load_context(inputs, node_id, now)
    existing = _messages_by_client_id({(item.sender.member_id, item.client_message_id) for item in inputs if item.client_message_id})
    messages, deliveries, outcomes = [], [], []
    for item in inputs:
        outcome = SendOutcome()
        outcomes.append(outcome)
        sender = item.sender
        if item.client_message_id and (sender.member_id, item.client_message_id) in existing:
            outcome.message_id = existing[(sender.member_id, item.client_message_id)]
            continue  # idempotent retry: same messageId, no second delivery
        message = _MessageRow(
            id=new_id(),
            mesh_id=sender.mesh_id,
            sender_member_id=sender.member_id,
            sender_session_pubkey=sender.session_pubkey,
            sender_pubkey=sender.session_pubkey or sender.member_pubkey,
            target_spec=item.target_spec,
            priority=item.priority,
            nonce=item.nonce,
            ciphertext=item.ciphertext,
            client_message_id=item.client_message_id,
            created_at=now,
        )
        try:
            if DIRECT_TARGET.fullmatch(item.target_spec):
                planned = _plan_direct(item, ctx, message, outcome)
            else:
                planned = _plan_multicast(item, ctx, message, outcome)
        except SendRejected as rejected:
            outcome.error, outcome.reject_reason = rejected.text, rejected.reason
            outcome.claimed.clear()
            outcome.doorbells.clear()
            continue
        if item.client_message_id:
            existing[(sender.member_id, item.client_message_id)] = message.id
        messages.append(message)
        deliveries.extend(planned)
        outcome.message_id = message.id
        outcome.recipients = len(planned)
        outcome.frame = push_frame(message)
    _bulk_insert(Message, MESSAGE_COLUMNS, list(map(_message_values, messages)))
    _bulk_insert(Delivery, DELIVERY_COLUMNS, list(map(_delivery_values, deliveries)))
    return outcomes


def undelivered():
    """Where every query of pending or in-flight rows starts: the state indexes are partial (`state < 2`), and
    SQLite uses a partial index only when the query repeats its condition word for word."""
    return Delivery.objects.filter(state__lt=DeliveryState.DELIVERED)


def _mine(member_id: str, keys: list[str]):
    return Q(recipient_member_id=member_id) & (Q(recipient_session__isnull=True) | Q(recipient_session__in=keys))


@transaction.atomic
def deliveries_claim(*, presence_id: str, member_id: str, keys: list[str]) -> list[dict[str, Any]]:
    """A drain: atomically claim what this connection may take now, oldest first. Disjoint across drains."""
    now = timezone.now()
    presence = (
        Presence.objects.filter(pk=presence_id, disconnected_at=None)
        .values("status", "status_source", "status_updated_at")
        .first()
    )
    if presence is None:
        return []
    status = effective_status(
        status=presence["status"], source=presence["status_source"], updated_at=presence["status_updated_at"], now=now
    )
    pending = undelivered().filter(_mine(member_id, keys), state=DeliveryState.PENDING)
    if status != Status.IDLE:
        pending = pending.filter(Q(gated=False) | Q(priority=Priority.NOW))
    ids = list(pending.order_by("id").select_for_update(skip_locked=True).values_list("id", flat=True)[:CLAIM_LIMIT])
    if not ids:
        return []
    undelivered().filter(pk__in=ids, state=DeliveryState.PENDING).update(
        state=DeliveryState.IN_FLIGHT, claimed_by=presence_id, claimed_at=now
    )
    rows = Message.objects.filter(deliveries__id__in=ids, deliveries__claimed_by=presence_id).order_by("created_at", "id")
    return [
        push_frame(m)
        for m in rows.distinct()
    ]


@dataclass(frozen=True)
class DeliveredMark:
    presence_id: str
    member_id: str
    keys: tuple[str, ...]
    message_ids: tuple[str, ...]
    by_claim: bool  # True: rows this presence wrote (ack-less); False: a client push_ack


_MARK_BY_CLAIM_SQL = (
    "UPDATE {t} AS d SET state = %s, delivered_at = %s"
    " FROM unnest(%s::text[], %s::text[]) AS a(message_id, claimed_by)"
    " WHERE d.message_id = a.message_id AND d.claimed_by = a.claimed_by AND d.state < %s"
)
_MARK_BY_ACK_SQL = (
    "UPDATE {t} AS d SET state = %s, delivered_at = %s"
    " FROM unnest(%s::text[], %s::text[]{key_arrays}) AS a(message_id, member_id{key_names})"
    " WHERE d.message_id = a.message_id AND d.recipient_member_id = a.member_id AND d.state < %s"
    " AND (d.recipient_session IS NULL OR d.recipient_session IN ({key_list}))"
)


def _mark_by_ack_sql(table: str, key_slots: int) -> str:
    names = [f"k{n}" for n in range(key_slots)]
    return _MARK_BY_ACK_SQL.format(
        t=table,
        key_arrays=", %s::text[]" * key_slots,
        key_names="".join(f", {name}" for name in names),
        key_list=", ".join(f"a.{name}" for name in names),
    )


@transaction.atomic
def deliveries_mark_delivered(*, marks: list[DeliveredMark]) -> int:
    """Mark a whole batch delivered: on Postgres two UPDATEs joined against unnested arrays, one for rows written
    to ack-less sockets (by claimer) and one for push_acks (by recipient and its session keys), whatever the
    number of sockets in the batch; one round trip per socket was most of a burst's mark time."""
    now = timezone.now()
    grouped: dict[tuple[str, bool], tuple[DeliveredMark, set[str]]] = {}
    for mark in marks:
        key = (mark.presence_id, mark.by_claim)
        if key not in grouped:
            grouped[key] = (mark, set())
        grouped[key][1].update(mark.message_ids)
    if connection.vendor == "postgresql":
        return _mark_delivered_postgres(grouped, now)
    done = 0
    for (presence_id, by_claim), (mark, message_ids) in grouped.items():
        rows = undelivered().filter(message_id__in=message_ids)
        if by_claim:
            rows = rows.filter(claimed_by=presence_id)
        else:
            rows = rows.filter(_mine(mark.member_id, list(mark.keys)))
        done += rows.update(state=DeliveryState.DELIVERED, delivered_at=now)
    return done


def _mark_delivered_postgres(grouped: dict[tuple[str, bool], tuple[DeliveredMark, set[str]]], now: datetime) -> int:
    table = connection.ops.quote_name(Delivery._meta.db_table)
    delivered = int(DeliveryState.DELIVERED)
    claimed_ids, claimers = [], []
    acked_ids, members, keys = [], [], []
    for (presence_id, by_claim), (mark, message_ids) in grouped.items():
        if by_claim:
            claimed_ids.extend(message_ids)
            claimers.extend([presence_id] * len(message_ids))
        else:
            acked_ids.extend(message_ids)
            members.extend([mark.member_id] * len(message_ids))
            keys.extend([mark.keys] * len(message_ids))
    done = 0
    with connection.cursor() as cursor:
        if claimed_ids:
            cursor.execute(_MARK_BY_CLAIM_SQL.format(t=table), [delivered, now, claimed_ids, claimers, delivered])
            done += cursor.rowcount
        if acked_ids:
            slots = max(1, max(len(k) for k in keys))
            columns = [[k[n] if n < len(k) else None for k in keys] for n in range(slots)]
            cursor.execute(_mark_by_ack_sql(table, slots), [delivered, now, acked_ids, members, *columns, delivered])
            done += cursor.rowcount
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
    orphans = orphans.exclude(
        claimed_by__in=Presence.objects.filter(disconnected_at=None).values("id")
    )
    return orphans.update(state=DeliveryState.PENDING, claimed_by=None, claimed_at=None)


@transaction.atomic
def deliveries_retransmit(
    *, node_id: str, older_than_seconds: float, hold: Callable[[str, str], bool] | None = None
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
            claimed_by__in=Presence.objects.filter(node_id=node_id, disconnected_at=None).values("id"),
        )
        .select_related("message")
        .order_by("id")[:CLAIM_LIMIT]
    )
    if not rows:
        return []
    Delivery.objects.filter(pk__in=[row.pk for row in rows]).update(claimed_at=now)
    if hold is not None:
        rows = [row for row in rows if not hold(row.claimed_by, row.message_id)]
    return [
        (
            row.claimed_by,
            push_frame(row.message),
        )
        for row in rows
    ]


def pending_recipients(*, node_id: str) -> list[tuple[str, str | None]]:
    """(member, session key) pairs with pending rows whose member has a connection on this node."""
    local_members = Presence.objects.filter(node_id=node_id, disconnected_at=None).values("member_id")
    return list(
        undelivered().filter(state=DeliveryState.PENDING, recipient_member_id__in=local_members)
        .values_list("recipient_member_id", "recipient_session")
        .distinct()
    )


def messages_expire() -> int:
    cutoff = timezone.now() - timedelta(days=conf.retention_days())
    deleted, _ = Message.objects.filter(created_at__lt=cutoff).delete()
    return deleted


def queue_depth() -> int:
    return undelivered().count()


def message_status(*, mesh_id: str, message_id: Any) -> dict[str, Any] | None:
    """`message_status_result` body, or None when the message is not in this mesh (§3.11)."""
    if not isinstance(message_id, str):
        return None
    message = Message.objects.filter(pk=message_id, mesh_id=mesh_id).first()
    if message is None:
        return None
    rows = list(
        Delivery.objects.filter(message=message)
        .select_related("recipient_member")
        .order_by("id")
    )
    delivered = bool(rows) and all(row.state == DeliveryState.DELIVERED for row in rows)
    delivered_at = Delivery.objects.filter(message=message).aggregate(at=Max("delivered_at"))["at"] if delivered else None
    recipients = [
        {
            "name": row.recipient_member.display_name,
            "pubkey": row.recipient_session
            if row.recipient_session and not row.recipient_session.startswith("sid:")
            else (row.recipient_member.pubkey or ""),
            "status": "delivered" if row.state == DeliveryState.DELIVERED else "held",
        }
        for row in rows
    ]
    if not recipients and DIRECT_TARGET.fullmatch(message.target_spec):
        recipients = [{"name": "unknown", "pubkey": message.target_spec[:16], "status": "disconnected"}]
    return {
        "messageId": message.id,
        "targetSpec": message.target_spec,
        "delivered": delivered,
        "deliveredAt": wire.iso_or_none(delivered_at),
        "recipients": recipients,
    }
