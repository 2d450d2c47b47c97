"""Message and delivery rows, and the per-database bulk SQL the hot path needs: COPY and `unnest` joins on
Postgres, plain statements on SQLite. Every function joins the caller's transaction."""

from __future__ import annotations

import operator
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from django.db import connection, transaction
from django.db.models import Count, Q

from broker import conf
from broker.models import Delivery, DeliveryState, Message, Priority
from meshes.models import TopicMessage

MESSAGE_COLUMNS = (
    "id", "mesh_id", "sender_member_id", "sender_session_pubkey", "sender_pubkey", "target_spec", "priority",
    "nonce", "ciphertext", "client_message_id", "created_at", "subtype",
)  # fmt: skip
DELIVERY_COLUMNS = (
    "message_id", "recipient_member_id", "recipient_session", "gated", "priority", "state", "claimed_by",
    "claimed_at", "delivered_at",
)  # fmt: skip


@dataclass(slots=True)
class MessageRow:
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
    subtype: str | None = None  # "reminder": a scheduled delivery


@dataclass(slots=True)
class DeliveryRow:
    message_id: str
    recipient_member_id: str
    recipient_session: str | None = None
    gated: bool = True
    priority: str = Priority.NEXT
    state: int = DeliveryState.PENDING
    claimed_by: str | None = None
    claimed_at: datetime | None = None
    delivered_at: datetime | None = None


TOPIC_MESSAGE_COLUMNS = (
    "id", "topic_id", "sender_member_id", "sender_session_pubkey", "sender_pubkey", "nonce", "ciphertext", "created_at",
)  # fmt: skip


def topic_history_row(message: MessageRow, topic_id: str) -> tuple:
    """A topic send's history entry (its `seq` comes from the insert order)."""
    return (
        message.id, topic_id, message.sender_member_id, message.sender_session_pubkey, message.sender_pubkey,
        message.nonce, message.ciphertext, message.created_at,
    )  # fmt: skip


@contextmanager
def prepared_cursor() -> Iterator[Any]:
    """Postgres: a cursor whose statements are bound server-side and prepared, for the fixed SQL of the hot path
    (Django binds client-side, so each of its queries is parsed and planned anew). Errors come out as Django's
    (IntegrityError and the rest), as from `connection.cursor()`."""
    connection.ensure_connection()
    raw = connection.connection
    if raw.prepare_threshold is None and conf.prepared_statements() and not connection.in_atomic_block:
        # Django turns preparing off; only server-side bound statements (these) are prepared, and each is still
        # planned for its own parameters: a cached generic plan, chosen while a table looked empty, seq-scanned
        # the deliveries on every mark batch once the table had grown. Preparing saves the parse and rewrite.
        # Outside a transaction, so the setting cannot be rolled back while the connection goes on preparing.
        raw.execute("SET plan_cache_mode = force_custom_plan")
        raw.prepare_threshold = 0
    with connection.wrap_database_errors, psycopg.Cursor(raw) as cursor:
        yield cursor


_message_values = operator.attrgetter(*MESSAGE_COLUMNS)  # row → tuple in C, in COPY column order
_delivery_values = operator.attrgetter(*DELIVERY_COLUMNS)


# Up to this many rows in all, one INSERT … unnest statement; past it, COPY (its rows cost a quarter as much, but a
# transaction of COPYs costs eight round trips, most of a one-message batch).
SINGLE_STATEMENT_ROWS = 8


def rows_insert(
    *, messages: Iterable[MessageRow], deliveries: Iterable[DeliveryRow], history: list[tuple] | None = None
) -> None:
    """Insert a batch's messages, deliveries and topic history, all or nothing (its own transaction when the caller
    has none): on Postgres one statement for a few rows, COPY for more; elsewhere executemany."""
    tables = [
        (Message, MESSAGE_COLUMNS, list(map(_message_values, messages))),
        (TopicMessage, TOPIC_MESSAGE_COLUMNS, history or []),
        (Delivery, DELIVERY_COLUMNS, list(map(_delivery_values, deliveries))),
    ]
    tables = [table for table in tables if table[2]]
    if not tables:
        return
    postgres = connection.vendor == "postgresql"
    if postgres and sum(len(rows) for _, _, rows in tables) <= SINGLE_STATEMENT_ROWS:
        _insert_postgres(tables)
        return
    with transaction.atomic(), connection.cursor() as cursor:
        for model, columns, rows in tables:
            table, names = model._meta.db_table, ", ".join(columns)
            if postgres:
                with cursor.cursor.copy(f"COPY {table} ({names}) FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row(row)
                continue
            adapt = connection.ops.adapt_datetimefield_value
            rows = [tuple(adapt(v) if isinstance(v, datetime) else v for v in row) for row in rows]
            cursor.executemany(f"INSERT INTO {table} ({names}) VALUES ({', '.join(['%s'] * len(columns))})", rows)


_ARRAY_TYPES = {"created_at": "timestamptz", "claimed_at": "timestamptz", "delivered_at": "timestamptz",
                "gated": "bool", "state": "int2"}  # fmt: skip


def _insert_postgres(tables: list[tuple[Any, tuple[str, ...], list[tuple]]]) -> None:
    """INSERT … SELECT FROM unnest(column arrays), the tables but the last in data-modifying CTEs."""
    parts, params = [], []
    for model, columns, rows in tables:
        arrays = ", ".join(f"%s::{_ARRAY_TYPES.get(column, 'text')}[]" for column in columns)
        parts.append(f"INSERT INTO {model._meta.db_table} ({', '.join(columns)}) SELECT * FROM unnest({arrays})")
        params.extend(list(column) for column in zip(*rows, strict=True))
    *first, last = parts
    sql = (f"WITH {', '.join(f'i{n} AS ({part})' for n, part in enumerate(first))} " if first else "") + last
    with prepared_cursor() as cursor:
        cursor.execute(sql, params)


_BY_CLIENT_ID_SQL = (
    "SELECT m.sender_member_id, m.client_message_id, m.id FROM unnest(%s::text[], %s::text[]) AS k(sender, client)"
    " JOIN {t} AS m ON m.sender_member_id = k.sender AND m.client_message_id = k.client"
    " WHERE m.client_message_id IS NOT NULL"
)


def messages_by_client_id(keys: set[tuple[str, str]]) -> dict[tuple[str, str], str]:
    """(sender member, clientMessageId) → messageId of what is already stored, found pair by pair through the
    unique index. Two IN lists (any sender × any id) made Postgres scan the whole message table instead."""
    if not keys:
        return {}
    pairs = sorted(keys)
    if connection.vendor == "postgresql":
        with prepared_cursor() as cursor:
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


def pending_counts(pairs: set[tuple[str, str]]) -> dict[tuple[str, str], int]:
    """(sender member, recipient member) → that recipient's rows still pending from that sender."""
    if not pairs:
        return {}
    senders = {sender for sender, _ in pairs}
    recipients = {recipient for _, recipient in pairs}
    rows = (
        Delivery.objects.filter(
            state=DeliveryState.PENDING, recipient_member_id__in=recipients, message__sender_member_id__in=senders
        )
        .values_list("message__sender_member_id", "recipient_member_id")
        .annotate(n=Count("id"))
    )
    return {(sender, recipient): n for sender, recipient, n in rows if (sender, recipient) in pairs}


def _mark_by_ack_sql(table: str, key_slots: int) -> str:
    names = [f"k{n}" for n in range(key_slots)]
    return _MARK_BY_ACK_SQL.format(
        t=table,
        key_arrays=", %s::text[]" * key_slots,
        key_names="".join(f", {name}" for name in names),
        key_list=", ".join(f"a.{name}" for name in names),
    )


def mark_delivered_postgres(
    *,
    by_claim: list[tuple[str, str]],
    by_ack: list[tuple[str, str, tuple[str, ...]]],
    now: datetime,
) -> int:
    """Two UPDATEs joined against unnested arrays, whatever the number of sockets: (message, claimer) pairs for
    rows written to ack-less sockets, (message, recipient member, its session keys) for push_acks."""
    table = connection.ops.quote_name(Delivery._meta.db_table)
    delivered = int(DeliveryState.DELIVERED)
    done = 0
    with prepared_cursor() as cursor:
        if by_claim:
            message_ids, claimers = (list(column) for column in zip(*by_claim, strict=True))
            cursor.execute(_MARK_BY_CLAIM_SQL.format(t=table), [delivered, now, message_ids, claimers, delivered])
            done += cursor.rowcount
        if by_ack:
            message_ids = [message_id for message_id, _, _ in by_ack]
            members = [member_id for _, member_id, _ in by_ack]
            keys = [key_set for _, _, key_set in by_ack]
            slots = max(1, max(len(k) for k in keys))
            columns = [[k[n] if n < len(k) else None for k in keys] for n in range(slots)]
            cursor.execute(_mark_by_ack_sql(table, slots), [delivered, now, message_ids, members, *columns, delivered])
            done += cursor.rowcount
    return done
