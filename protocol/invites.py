"""Invite formats, byte for byte as client.md §3 and protocol.md §8.5 describe them.

v1: a token that is base64url (no padding) of the JSON payload, signed over
    `v|mesh_id|mesh_slug|broker_url|expires_at|mesh_root_key|role|owner_pubkey` (expires_at in unix seconds).
v2: a capability over `v=2|mesh_id|invite_id|expires_at|role|owner_pubkey`; the root key reaches the claimant
    sealed to its x25519 key instead of riding in the link.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from protocol.crypto import sign_detached_hex, verify_detached_hex
from protocol.encoding import HEX64, HEX128, EncodingError, b64url_decode, b64url_encode

INVITE_ROLES = ("admin", "member")
V1_FIELDS = ("v", "mesh_id", "mesh_slug", "broker_url", "expires_at", "mesh_root_key", "role", "owner_pubkey")


class InviteError(ValueError):
    """An invite is malformed, expired or not signed by the key it names. `code` is stable for callers."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class InvitePayloadV1:
    mesh_id: str
    mesh_slug: str
    broker_url: str
    expires_at: int
    mesh_root_key: str
    role: str
    owner_pubkey: str
    signature: str = ""
    v: int = 1

    def canonical(self) -> str:
        return v1_canonical(self.as_unsigned_dict())

    def as_unsigned_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in V1_FIELDS}

    def as_dict(self) -> dict[str, Any]:
        return {**self.as_unsigned_dict(), "signature": self.signature}


def v1_canonical(fields: dict[str, Any]) -> str:
    """The signed text. Numbers print in plain decimal; every other field exactly as given."""
    parts = []
    for name in V1_FIELDS:
        value = fields[name]
        parts.append(str(int(value)) if name in ("v", "expires_at") else str(value))
    return "|".join(parts)


def v1_sign(payload: InvitePayloadV1, owner_secret_hex: str) -> InvitePayloadV1:
    signature = sign_detached_hex(owner_secret_hex, payload.canonical().encode("utf-8"))
    return InvitePayloadV1(**{**payload.as_unsigned_dict(), "signature": signature})


def v1_encode(payload: InvitePayloadV1) -> str:
    """The token: JSON in the reference issuer's key order, no whitespace, then base64url without padding."""
    text = json.dumps(payload.as_dict(), separators=(",", ":"), ensure_ascii=False)
    return b64url_encode(text.encode("utf-8"))


def v1_decode(token: str) -> dict[str, Any]:
    """Token → payload dict, checking shape only (not expiry or signature)."""
    try:
        data = json.loads(b64url_decode(token.strip()).decode("utf-8"))
    except (EncodingError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InviteError("malformed", "invite token is not base64url JSON") from exc
    check_v1_shape(data)
    return data


def check_v1_shape(data: Any) -> None:
    if not isinstance(data, dict):
        raise InviteError("malformed", "invite payload must be an object")
    if data.get("v") != 1 or isinstance(data.get("v"), bool):
        raise InviteError("malformed", "invite version must be 1")
    for name in ("mesh_id", "mesh_slug", "broker_url", "mesh_root_key"):
        if not isinstance(data.get(name), str) or not data[name]:
            raise InviteError("malformed", f"invite field {name} is missing")
    expires = data.get("expires_at")
    if isinstance(expires, bool) or not isinstance(expires, (int, float)) or expires <= 0:
        raise InviteError("malformed", "invite expires_at must be a positive number of seconds")
    if isinstance(expires, float) and not expires.is_integer():
        raise InviteError("malformed", "invite expires_at must be whole seconds")
    if data.get("role") not in INVITE_ROLES:
        raise InviteError("malformed", "invite role must be admin or member")
    if not isinstance(data.get("owner_pubkey"), str) or not HEX64.fullmatch(data["owner_pubkey"]):
        raise InviteError("malformed", "invite owner_pubkey must be 64 hex chars")
    if not isinstance(data.get("signature"), str) or not HEX128.fullmatch(data["signature"]):
        raise InviteError("malformed", "invite signature must be 128 hex chars")


def v1_signature_valid(data: dict[str, Any]) -> bool:
    return verify_detached_hex(data["owner_pubkey"], v1_canonical(data).encode("utf-8"), data["signature"])


def v1_verify(token: str, *, now: float | None = None) -> dict[str, Any]:
    """Client-side order (client.md §3.2): decode → shape → expiry → signature. Returns the payload."""
    data = v1_decode(token)
    current = int(time.time() if now is None else now)
    if int(data["expires_at"]) < current:
        raise InviteError("expired", f"invite expired: expires_at={int(data['expires_at'])}, now={current}")
    if not v1_signature_valid(data):
        raise InviteError("bad_signature", "invite signature invalid (link tampered?)")
    return data


def v2_canonical(*, mesh_id: str, invite_id: str, expires_at: int, role: str, owner_pubkey: str) -> str:
    return f"v=2|{mesh_id}|{invite_id}|{int(expires_at)}|{role}|{owner_pubkey}"


def v2_capability(canonical: str, owner_secret_hex: str) -> str:
    """The stored capability: JSON {canonical, signature}."""
    signature = sign_detached_hex(owner_secret_hex, canonical.encode("utf-8"))
    return json.dumps({"canonical": canonical, "signature": signature}, separators=(",", ":"))


def v2_capability_valid(capability: str, *, expected_canonical: str, owner_pubkey: str) -> bool:
    try:
        data = json.loads(capability)
    except (TypeError, json.JSONDecodeError):
        return False
    if not isinstance(data, dict) or data.get("canonical") != expected_canonical:
        return False
    signature = data.get("signature")
    return isinstance(signature, str) and verify_detached_hex(
        owner_pubkey, expected_canonical.encode("utf-8"), signature
    )
