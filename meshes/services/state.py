"""Writes to a mesh's shared state (protocol.md §5.4): one value per key, sealed by our clients, plaintext from
reference clients. Every write bumps the key's version; a writer that names the version it read
(`expectedVersion`, 0 = "the key must not exist yet") cannot overwrite someone else's change blindly."""

from __future__ import annotations

import json
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from meshes.actors import Actor
from meshes.errors import Conflict, ServiceError
from meshes.models import StateEntry
from meshes.services.checks import check_int, clean_sealed, require_live_mesh, require_member
from meshes.text import storable

MAX_KEY_CHARS = 200
MAX_VALUE_CHARS = 60_000  # a value travels in one 64 KiB frame
NO_VALUE = object()  # set_state without `value` (a sealed write)


def state_clean_key(key: Any) -> str:
    if not isinstance(key, str) or not storable(key) or not 1 <= len(key.strip()) <= MAX_KEY_CHARS:
        raise ServiceError("invalid_args", f"key must be 1–{MAX_KEY_CHARS} characters of text")
    return key.strip()


def _clean_value(value: Any) -> Any:
    try:
        text = json.dumps(value, allow_nan=False, ensure_ascii=False)
    except (TypeError, ValueError, RecursionError):
        raise ServiceError("invalid_args", "value must be JSON (no NaN or Infinity)") from None
    # Postgres' jsonb takes neither NUL nor a lone surrogate in a string
    if len(text) > MAX_VALUE_CHARS or "\\u0000" in text or not storable(text):
        raise ServiceError("invalid_args", f"value must be at most {MAX_VALUE_CHARS} characters of storable JSON")
    return value


@transaction.atomic
def state_set(
    *, actor: Actor, key: Any, value: Any = NO_VALUE, sealed: Any = None, expected_version: Any = None
) -> StateEntry:
    """Upsert (mesh, key). Raises Conflict `version_conflict` (with `currentVersion`) when `expected_version`
    is given and is not the key's version."""
    member = require_member(actor)
    require_live_mesh(actor.mesh)
    key = state_clean_key(key)
    if sealed is not None:
        sealed, value = clean_sealed(sealed, actor=actor, field="sealed"), None
    elif value is NO_VALUE:
        raise ServiceError("invalid_args", "set_state needs a value (or a sealed value)")
    else:
        value = _clean_value(value)
    expected = None if expected_version is None else check_int(expected_version, field="expectedVersion", low=0,
                                                                 high=2**62)
    entry = StateEntry.objects.select_for_update().filter(mesh=actor.mesh, key=key).first()
    if entry is None:
        entry = _create(actor, key, expected)
    elif expected is not None and entry.version != expected:
        _conflict(key, entry.version, expected)
    else:
        entry.version += 1
    entry.value, entry.sealed = value, sealed
    entry.updated_by, entry.updated_by_name, entry.updated_at = member, member.display_name, timezone.now()
    entry.save()
    return entry


def _create(actor: Actor, key: str, expected: int | None) -> StateEntry:
    if expected not in (None, 0):
        _conflict(key, 0, expected)
    try:
        with transaction.atomic():
            return StateEntry.objects.create(mesh=actor.mesh, key=key, version=1)
    except IntegrityError:  # another writer created it meanwhile: a blind write follows it, a CAS loses
        entry = StateEntry.objects.select_for_update().get(mesh=actor.mesh, key=key)
        if expected is not None:
            _conflict(key, entry.version, expected)
        entry.version += 1
        return entry


def _conflict(key: str, current: int, expected: int) -> None:
    raise Conflict(
        "version_conflict",
        f"state {key!r} is at version {current}, not {expected}: read it again and retry",
        currentVersion=current,
    )
