"""The signed status hook (docs/wire-extensions.md): `POST /hook/set-status` carrying the member's ed25519
signature over what it asks, so only the member itself can change its sessions' status. The reference's unsigned
form stays accepted by the broker, but only for sessions that never said they sign."""

from __future__ import annotations

import time
from typing import Any

from protocol.crypto import sign_detached_hex, verify_detached_hex
from protocol.encoding import js_number


def hook_canonical(*, mesh_id: str, member_id: str, cwd: str, status: str, timestamp: int | float) -> str:
    return f"hook|{mesh_id}|{member_id}|{cwd}|{status}|{js_number(timestamp)}"


def hook_signed_fields(
    *, mesh_id: str, member_id: str, secret_hex: str, cwd: str, status: str, timestamp: int | None = None
) -> dict[str, Any]:
    """The fields a signed hook body adds to the reference's `{cwd, status, pid, session_id}`."""
    stamp = int(time.time() * 1000) if timestamp is None else timestamp
    text = hook_canonical(mesh_id=mesh_id, member_id=member_id, cwd=cwd, status=status, timestamp=stamp)
    return {
        "meshId": mesh_id,
        "memberId": member_id,
        "timestamp": stamp,
        "signature": sign_detached_hex(secret_hex, text.encode("utf-8")),
    }


def hook_signature_valid(
    *, mesh_id: str, member_id: str, pubkey: str, cwd: str, status: str, timestamp: int | float, signature: str
) -> bool:
    text = hook_canonical(mesh_id=mesh_id, member_id=member_id, cwd=cwd, status=status, timestamp=timestamp)
    return verify_detached_hex(pubkey, text.encode("utf-8"), signature)
