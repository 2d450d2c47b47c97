"""The hello handshake: its signed string and its frame (protocol.md §2.2–2.3, client.md §6.1)."""

from __future__ import annotations

import time
from typing import Any

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


def hello_frame(
    *,
    mesh_id: str,
    member_id: str,
    pubkey: str,
    secret_hex: str,
    session_id: str,
    pid: int,
    cwd: str,
    timestamp: int | None = None,
    **fields: Any,
) -> dict[str, Any]:
    """A signed `hello` (§2.2). `fields` are the optional ones in wire spelling (`sessionPubkey`, `groups`,
    `deliveryAck`, ...); a None value is left out."""
    stamp, signature = hello_sign(
        mesh_id=mesh_id, member_id=member_id, pubkey=pubkey, secret_hex=secret_hex, timestamp=timestamp
    )
    frame: dict[str, Any] = {
        "type": "hello",
        "meshId": mesh_id,
        "memberId": member_id,
        "pubkey": pubkey,
        "sessionId": session_id,
        "pid": pid,
        "cwd": cwd,
        "timestamp": stamp,
        "signature": signature,
    }
    frame.update({key: value for key, value in fields.items() if value is not None})
    return frame
