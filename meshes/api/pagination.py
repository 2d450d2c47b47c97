"""Keyset pagination for `/api/v1` lists: `?limit=` (1–200, default 50) and `?after=<nextCursor>`. The cursor is the
last row's (time, id), so a page never repeats or skips rows when others are added meanwhile."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from django.db.models import Q, QuerySet
from django.http import HttpRequest

from meshes.errors import ServiceError
from protocol.encoding import EncodingError, b64url_decode, b64url_encode

PAGE_DEFAULT, PAGE_MAX = 50, 200


def page_limit(request: HttpRequest) -> int:
    raw = request.GET.get("limit")
    if raw is None:
        return PAGE_DEFAULT
    if not raw.isdigit() or not 1 <= int(raw) <= PAGE_MAX:
        raise ServiceError("invalid_limit", f"limit must be 1–{PAGE_MAX}", status=422)
    return int(raw)


def _decode(cursor: str) -> tuple[datetime, str]:
    try:
        moment, row_id = json.loads(b64url_decode(cursor))
        return datetime.fromisoformat(moment), str(row_id)
    except (EncodingError, ValueError, TypeError):
        raise ServiceError("invalid_cursor", "after must be a nextCursor from an earlier page", status=422) from None


def keyset_page(rows: QuerySet, request: HttpRequest, *, time_field: str, newest_first: bool) -> tuple[list[Any], str | None]:
    """One page of `rows` ordered by (time_field, id) and the cursor of the next page (None on the last)."""
    limit = page_limit(request)
    after = request.GET.get("after")
    if after:
        moment, row_id = _decode(after)
        if newest_first:
            rows = rows.filter(Q(**{f"{time_field}__lt": moment}) | Q(**{time_field: moment, "id__lt": row_id}))
        else:
            rows = rows.filter(Q(**{f"{time_field}__gt": moment}) | Q(**{time_field: moment, "id__gt": row_id}))
    order = (f"-{time_field}", "-id") if newest_first else (time_field, "id")
    items = list(rows.order_by(*order)[: limit + 1])
    if len(items) <= limit:
        return items, None
    items = items[:limit]
    last = items[-1]
    return items, b64url_encode(json.dumps([getattr(last, time_field).isoformat(), last.id]).encode())
