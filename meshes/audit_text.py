"""The audit log in words for people: ids become names, epochs dates, keys short; the same rendering for the page
and the CSV / JSON exports."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from meshes.models import ApiKey, Invite, Member, Mesh

ID_KEYS = {"memberId", "retiredMemberId", "inviteId", "keyId", "presenceId"}
EPOCH_KEYS = {"expiresAt", "expires_at"}
KEY_KEYS = {"pubkey", "peerPubkey"}


def audit_names(*, mesh: Mesh) -> dict[str, str]:
    """Ids of this mesh's members, invites and API keys → how people know them."""
    names = {member_id: name for member_id, name in Member.objects.filter(mesh=mesh).values_list("id", "display_name")}
    names.update({invite_id: f"invite {code or invite_id[:8]}"
                  for invite_id, code in Invite.objects.filter(mesh=mesh).values_list("id", "code")})
    names.update({key_id: f"key “{label}”" for key_id, label in ApiKey.objects.filter(mesh=mesh).values_list("id", "label")})
    return names


def readable_value(name: str, value: Any, names: dict[str, str]) -> str:
    if name in ID_KEYS and isinstance(value, str):
        label = names.get(value)
        return f"{label} ({value[:8]})" if label else value[:12]
    if name in EPOCH_KEYS and isinstance(value, (int, float)) and not isinstance(value, bool):
        return datetime.fromtimestamp(value, tz=UTC).strftime("%Y-%m-%d %H:%M UTC")
    if name in KEY_KEYS and isinstance(value, str):
        return f"{value[:12]}…"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if value is None:
        return "—"
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return ", ".join(value) or "none"
    return json.dumps(value, ensure_ascii=False)


def readable_payload(payload: Any, names: dict[str, str]) -> list[tuple[str, str]]:
    """Name/value pairs of an event's details; `via` is shown on its own."""
    if not isinstance(payload, dict):
        return []
    return [(name, readable_value(name, value, names)) for name, value in payload.items() if name != "via"]


def details_line(payload: Any, names: dict[str, str]) -> str:
    return " ".join(f"{name}={value}" for name, value in readable_payload(payload, names))
