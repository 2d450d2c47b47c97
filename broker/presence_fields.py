"""What a connection says about itself (hello fields, summary, profile, stats, groups), cleaned to what a
presence row can store. One rule per field, for the hello path and the `set_*` handlers alike; text the
database refuses (NUL, lone surrogates) never reaches a row, where it would poison later writes.
"""

from __future__ import annotations

import math
from typing import Any

from meshes.text import storable

PROFILE_KEYS = ("avatar", "title", "bio", "capabilities")
# What a connection reports about itself now (set_stats) ...
LIVE_STATS_KEYS = ("messagesIn", "messagesOut", "toolCalls", "uptime", "errors")
# ... and what is summed across its sessions into the member's saved state (uptime is not a sum).
CUMULATIVE_STATS_KEYS = ("messagesIn", "messagesOut", "toolCalls", "errors")
SUMMARY_LIMIT = 10_000
NAME_LIMIT = 100


def opt_str(value: Any, limit: int) -> str | None:
    return value[:limit] if isinstance(value, str) and value else None


def clean_groups(value: Any) -> list[dict[str, str]]:
    groups: list[dict[str, str]] = []
    if not isinstance(value, list):
        return groups
    for item in value:
        if isinstance(item, dict) and isinstance(item.get("name"), str) and item["name"]:
            entry = {"name": item["name"][:NAME_LIMIT]}
            if isinstance(item.get("role"), str):
                entry["role"] = item["role"][:NAME_LIMIT]
            groups.append(entry)
    return groups


def group_joined(groups: list[dict[str, str]], *, name: Any, role: Any) -> list[dict[str, str]] | None:
    """`join_group`: the groups with `name` (re)joined, or None when the name cannot be one."""
    if not isinstance(name, str) or not name.lstrip("@") or not storable(name):
        return None
    name = name.lstrip("@")[:NAME_LIMIT]
    entry = {"name": name}
    if isinstance(role, str) and storable(role):
        entry["role"] = role[:NAME_LIMIT]
    return [g for g in groups if g.get("name") != name] + [entry]


def group_left(groups: list[dict[str, str]], *, name: Any) -> list[dict[str, str]] | None:
    if not isinstance(name, str):
        return None
    name = name.lstrip("@")
    return [g for g in groups if g.get("name") != name]


def clean_summary(value: Any) -> str | None:
    """The summary to store (not text: cleared), or None when it cannot be stored (the update is ignored)."""
    summary = value[:SUMMARY_LIMIT] if isinstance(value, str) else ""
    return summary if storable(summary) else None


def profile_updated(profile: dict[str, Any], frame: dict[str, Any]) -> dict[str, Any]:
    """`set_profile`: the known keys the frame carries, merged into the current profile."""
    updated = dict(profile)
    for key in PROFILE_KEYS:
        if key not in frame:
            continue
        value = frame[key]
        if key == "capabilities":
            if isinstance(value, list):
                updated[key] = [str(v)[:100] for v in value if storable(str(v))][:50]
        elif isinstance(value, str) and storable(value):
            updated[key] = value[:2000]
    return updated


def _stat_value(value: Any) -> bool:
    """A counter the database can store: Python parses NaN/Infinity, JSON columns refuse them."""
    if isinstance(value, bool):
        return False
    return isinstance(value, int) or (isinstance(value, float) and math.isfinite(value))


def clean_stats(value: Any) -> dict[str, Any] | None:
    if not isinstance(value, dict):
        return None
    return {key: value[key] for key in LIVE_STATS_KEYS if _stat_value(value.get(key))}


def stats_restored(cumulative: dict[str, Any] | None) -> dict[str, int]:
    cumulative = cumulative or {}
    return {key: int(cumulative.get(key, 0) or 0) for key in CUMULATIVE_STATS_KEYS}


def stats_merged(cumulative: dict[str, Any] | None, stats: dict[str, Any] | None) -> dict[str, int]:
    """A closing connection's live stats added to the member's cumulative ones."""
    merged = stats_restored(cumulative)
    for key in CUMULATIVE_STATS_KEYS:
        value = (stats or {}).get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            merged[key] += int(value)
    return merged
