"""Reads of a mesh's shared state, memories, tasks and scheduled messages (protocol.md §5.4–5.8), and the counts
the dashboard and `mesh_info` show. Rows only: `broker.wire_coordination` renders them for the wire."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import connection
from django.db.models import Count, Max, Q

from meshes.actors import Actor
from meshes.errors import ServiceError
from meshes.models import Memory, MemoryToken, ScheduledMessage, StateEntry, Task, TaskStatus
from meshes.text import storable
from protocol.records import words

STATE_LIST_LIMIT = 1000
PLAINTEXT_RECALL_LIMIT = 20  # the reference's
BLIND_RECALL_CANDIDATES = 50  # the client decrypts these and keeps its own best 20
TASK_LIST_LIMIT = 100


def state_get(*, mesh_id: str, key: str) -> StateEntry | None:
    return StateEntry.objects.filter(mesh_id=mesh_id, key=key).first()


def state_list(*, mesh_id: str) -> list[StateEntry]:
    return list(StateEntry.objects.filter(mesh_id=mesh_id).order_by("key")[:STATE_LIST_LIMIT])


# --- memory -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Recalled:
    memory: Memory
    score: float  # blind: query tokens matched; plaintext: ts_rank (Postgres) or words matched (SQLite)


def memory_recall(*, mesh_id: str, query: str | None = None, tokens: list[str] | None = None) -> list[Recalled]:
    """Sealed memories by blind tokens, best first; plaintext memories by full-text search (§5.5)."""
    found = _recall_blind(mesh_id, tokens) if tokens else []
    if query and query.strip():
        search = _recall_postgres if connection.vendor == "postgresql" else _recall_words
        found += search(mesh_id, query)
    return found


def _recall_blind(mesh_id: str, tokens: list[str]) -> list[Recalled]:
    # Token rows only, no join: a forgotten memory's tokens are deleted, and token ids grow with time (newest first).
    ranked = list(
        MemoryToken.objects.filter(mesh_id=mesh_id, token__in=tokens)
        .values("memory_id")
        .annotate(matched=Count("id"), newest=Max("id"))
        .order_by("-matched", "-newest")[:BLIND_RECALL_CANDIDATES]
    )
    memories = Memory.objects.filter(forgotten_at=None).in_bulk([row["memory_id"] for row in ranked])
    return [Recalled(memories[row["memory_id"]], float(row["matched"])) for row in ranked if row["memory_id"] in memories]


_FTS_SQL = (
    "SELECT m.id, ts_rank(to_tsvector('english', coalesce(m.content, '')), q) AS rank"
    " FROM {table} AS m, plainto_tsquery('english', %s) AS q"
    " WHERE m.mesh_id = %s AND m.forgotten_at IS NULL AND m.content IS NOT NULL"
    " AND to_tsvector('english', coalesce(m.content, '')) @@ q"
    " ORDER BY rank DESC, m.created_at DESC LIMIT %s"
)


def _recall_postgres(mesh_id: str, query: str) -> list[Recalled]:
    with connection.cursor() as cursor:
        cursor.execute(_FTS_SQL.format(table=connection.ops.quote_name(Memory._meta.db_table)),
                       [query, mesh_id, PLAINTEXT_RECALL_LIMIT])
        ranked = cursor.fetchall()
    memories = Memory.objects.in_bulk([memory_id for memory_id, _ in ranked])
    return [Recalled(memories[memory_id], float(rank)) for memory_id, rank in ranked if memory_id in memories]


def _recall_words(mesh_id: str, query: str) -> list[Recalled]:
    """The embedded database has no English stemmer: memories holding the query's words, most words first."""
    wanted = words(query)
    if not wanted:
        return []
    match = Q()
    for word in wanted:
        match |= Q(content__icontains=word)
    candidates = Memory.objects.filter(match, mesh_id=mesh_id, forgotten_at=None, content__isnull=False)
    scored = []
    for memory in candidates.order_by("-created_at")[:500]:
        have = set(words(memory.content or ""))
        score = sum(1 for word in wanted if word in have)
        if score:
            scored.append(Recalled(memory, float(score)))
    scored.sort(key=lambda item: (-item.score, -item.memory.created_at.timestamp()))
    return scored[:PLAINTEXT_RECALL_LIMIT]


# --- tasks --------------------------------------------------------------------------------------------------


def tasks_list(*, mesh_id: str, status: Any = None, assignee: Any = None) -> list[Task]:
    tasks = Task.objects.filter(mesh_id=mesh_id)
    if status not in (None, ""):
        if status not in TaskStatus.values:
            raise ServiceError("invalid_args", f"status must be one of {', '.join(TaskStatus.values)}")
        tasks = tasks.filter(status=status)
    if assignee not in (None, ""):
        if not isinstance(assignee, str) or not storable(assignee):
            raise ServiceError("invalid_args", "assignee must be text")
        tasks = tasks.filter(assignee=assignee)
    return list(tasks.order_by("-created_at", "-id")[:TASK_LIST_LIMIT])


# --- scheduled messages -------------------------------------------------------------------------------------


def schedules_owned(*, actor: Actor, session_pubkey: str | None) -> Q:
    """What a connection may list and cancel: its member's entries, and those made from its session key."""
    own = Q(member=actor.member)
    if session_pubkey:
        own |= Q(session_pubkey=session_pubkey)
    return own


def scheduled_for(*, actor: Actor, session_pubkey: str | None) -> list[ScheduledMessage]:
    return list(
        ScheduledMessage.objects.filter(schedules_owned(actor=actor, session_pubkey=session_pubkey), mesh=actor.mesh,
                                        cancelled_at=None, finished_at=None).order_by("deliver_at")
    )


# --- overview -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CoordinationCounts:
    state_keys: list[str]
    memory_count: int
    tasks: dict[str, int]  # open, claimed, done


def coordination_counts(*, mesh_id: str) -> CoordinationCounts:
    by_status = dict(Task.objects.filter(mesh_id=mesh_id).values_list("status").annotate(n=Count("id")))
    return CoordinationCounts(
        state_keys=list(StateEntry.objects.filter(mesh_id=mesh_id).order_by("key").values_list("key", flat=True)),
        memory_count=Memory.objects.filter(mesh_id=mesh_id, forgotten_at=None).count(),
        tasks={status: by_status.get(status, 0) for status in TaskStatus.values},
    )


@dataclass(frozen=True)
class CoordinationOverview:
    counts: CoordinationCounts
    encrypted_memories: int
    tasks: list[Task]  # newest first
    scheduled: list[ScheduledMessage]  # next to fire first
    state: list[StateEntry]
    now: datetime


def coordination_overview(*, mesh_id: str, now: datetime) -> CoordinationOverview:
    """The dashboard's page: metadata only (what the server can read)."""
    return CoordinationOverview(
        counts=coordination_counts(mesh_id=mesh_id),
        encrypted_memories=Memory.objects.filter(mesh_id=mesh_id, forgotten_at=None, sealed__isnull=False).count(),
        tasks=list(Task.objects.filter(mesh_id=mesh_id).order_by("-created_at")[:TASK_LIST_LIMIT]),
        scheduled=list(
            ScheduledMessage.objects.filter(mesh_id=mesh_id, cancelled_at=None, finished_at=None)
            .select_related("member").order_by("deliver_at")[:TASK_LIST_LIMIT]
        ),
        state=list(StateEntry.objects.filter(mesh_id=mesh_id).order_by("key")[:STATE_LIST_LIMIT]),
        now=now,
    )
