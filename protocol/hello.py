"""The hello handshake's signed string (protocol.md §2.3, client.md §6.1)."""

from __future__ import annotations

import time

from protocol.crypto import sign_detached_hex, verify_detached_hex
from protocol.encoding import js_number

HELLO_MAX_SKEW_MS = 60_000


def hello_canonical(*, mesh_id: str, member_id: str, pubkey: str, timestamp: int | float) -> str:
    return f"{mesh_id}|{member_id}|{pubkey}|{js_number(timestamp)}"


def hello_sign(*, mesh_id: str, member_id: str, pubkey: str, secret_hex: str, timestamp: int | None = None) -> tuple[int, str]:
    """Return (timestamp_ms, signature_hex) for a hello frame."""
    stamp = int(time.time() * 1000) if timestamp is None else timestamp
    text = hello_canonical(mesh_id=mesh_id, member_id=member_id, pubkey=pubkey, timestamp=stamp)
    return stamp, sign_detached_hex(secret_hex, text.encode("utf-8"))


def hello_signature_valid(*, mesh_id: str, member_id: str, pubkey: str, timestamp: int | float, signature: str) -> bool:
    text = hello_canonical(mesh_id=mesh_id, member_id=member_id, pubkey=pubkey, timestamp=timestamp)
    return verify_detached_hex(pubkey, text.encode("utf-8"), signature)
