"""The reads a send batch's routing context starts from: live connections (each with whether its worker's beat has
stopped) and members. On Postgres they are fixed SQL over arrays: building the same queries through the ORM cost
more than half of a one-message batch. Other databases run the same filters through the ORM."""

from __future__ import annotations

import json
from collections.abc import Collection
from datetime import datetime
from typing import Any

from django.db import connection
from django.db.models import Exists, OuterRef, Q

from broker.models import BrokerWorker, Presence
from broker.services.bulk import prepared_cursor
from broker.services.liveness import beat_cutoff, lease_cutoff, live_presences
from meshes.models import Member

MEMBER_FIELDS = ("id", "mesh_id", "pubkey", "peer_grants", "default_groups", "display_name")
PRESENCE_FIELDS = (
    "id", "mesh_id", "member_id", "session_id", "session_pubkey", "groups", "visible", "worker_id",
    "status", "status_source", "status_updated_at", "channel",
)  # fmt: skip
_MEMBER_JSON = ("peer_grants", "default_groups")
_PRESENCE_JSON = ("groups",)


def live_presence_rows(
    *,
    now: datetime,
    mesh_ids: Collection[str],
    pubkeys: Collection[str] | None = None,
    member_ids: Collection[str] | None = None,
) -> list[dict[str, Any]]:
    """Live connections of these meshes, oldest first, each with `dead` (its worker stopped beating: a ghost until
    retired). Narrowed to those of member or session key in `pubkeys`, or of a member in `member_ids`."""
    stale = beat_cutoff(now)
    if connection.vendor != "postgresql":
        rows = live_presences(now=now).filter(mesh_id__in=mesh_ids)
        if pubkeys is not None:
            rows = rows.filter(Q(member_pubkey__in=pubkeys) | Q(session_pubkey__in=pubkeys))
        if member_ids is not None:
            rows = rows.filter(member_id__in=member_ids)
        dead = BrokerWorker.objects.filter(worker_id=OuterRef("worker_id"), beat_at__lt=stale)
        return list(rows.annotate(dead=Exists(dead)).order_by("connected_at").values(*PRESENCE_FIELDS, "dead"))
    sql, params = _PRESENCE_SQL, [list(mesh_ids), lease_cutoff(now)]
    if pubkeys is not None:
        sql, params = (
            sql + " AND (p.member_pubkey = ANY(%s) OR p.session_pubkey = ANY(%s))",
            [*params, list(pubkeys), list(pubkeys)],
        )
    if member_ids is not None:
        sql, params = sql + " AND p.member_id = ANY(%s)", [*params, list(member_ids)]
    return _fetch(sql + " ORDER BY p.connected_at", [stale, *params], _PRESENCE_JSON)


def member_rows(
    *, mesh_ids: Collection[str], pubkeys: Collection[str] | None = None, ids: Collection[str] | None = None
) -> list[dict[str, Any]]:
    """Current members (not revoked, key known) of these meshes; with `pubkeys` and/or `ids`, only those matching
    either."""
    if connection.vendor != "postgresql":
        rows = Member.objects.filter(mesh_id__in=mesh_ids, revoked_at=None, pubkey__isnull=False)
        if pubkeys is not None or ids is not None:
            rows = rows.filter(Q(pubkey__in=pubkeys or ()) | Q(id__in=ids or ()))
        return list(rows.values(*MEMBER_FIELDS))
    sql, params = _MEMBER_SQL, [list(mesh_ids)]
    if pubkeys is not None or ids is not None:
        sql, params = (
            sql + " AND (m.pubkey = ANY(%s) OR m.id = ANY(%s))",
            [*params, list(pubkeys or ()), list(ids or ())],
        )
    return _fetch(sql, params, _MEMBER_JSON)


def _fetch(sql: str, params: list, json_columns: tuple[str, ...]) -> list[dict[str, Any]]:
    with prepared_cursor() as cursor:
        cursor.execute(sql, params)
        names = [column.name for column in cursor.description]
        rows = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
    for row in rows:  # Django's Postgres connections hand jsonb over as text
        for column in json_columns:
            if isinstance(row[column], str):
                row[column] = json.loads(row[column])
    return rows


def _columns(alias: str, fields: tuple[str, ...]) -> str:
    return ", ".join(f"{alias}.{field}" for field in fields)


_PRESENCE_SQL = (
    f"SELECT {_columns('p', PRESENCE_FIELDS)}, (w.beat_at IS NOT NULL AND w.beat_at < %s) AS dead"
    f" FROM {Presence._meta.db_table} AS p LEFT JOIN {BrokerWorker._meta.db_table} AS w ON w.worker_id = p.worker_id"
    " WHERE p.mesh_id = ANY(%s) AND p.disconnected_at IS NULL AND p.last_ping_at >= %s"
)
_MEMBER_SQL = (
    f"SELECT {_columns('m', MEMBER_FIELDS)} FROM {Member._meta.db_table} AS m"
    " WHERE m.mesh_id = ANY(%s) AND m.revoked_at IS NULL AND m.pubkey IS NOT NULL"
)
