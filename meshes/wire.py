"""How meshes objects look on the wire, for every path that shows them: the broker's WebSocket replies and
`/api/v1` render API keys and revoke outcomes with these, so both say the same thing the same way."""

from __future__ import annotations

from typing import Any

from meshes.models import ApiKey
from protocol.encoding import iso_ms, iso_or_none


def api_key_entry(key: ApiKey) -> dict[str, Any]:
    """Never the secret or its hash: the secret exists only in the creation response."""
    return {
        "id": key.id,
        "label": key.label,
        "prefix": key.secret_prefix,
        "capabilities": key.capabilities,
        "topicScopes": key.topic_scopes,
        "memberId": key.member_id,
        "status": key.status(),
        "createdAt": iso_ms(key.created_at),
        "lastUsedAt": iso_or_none(key.last_used_at),
        "revokedAt": iso_or_none(key.revoked_at),
        "expiresAt": iso_or_none(key.expires_at),
    }


def api_key_revoke_body(outcome: Any) -> dict[str, Any]:
    """A `RevokeOutcome` as `{status: revoked | not_found | not_unique, id?, matches?}`."""
    body: dict[str, Any] = {"status": outcome.status}
    if outcome.key_id:
        body["id"] = outcome.key_id
    if outcome.matches is not None:
        body["matches"] = outcome.matches
    return body
