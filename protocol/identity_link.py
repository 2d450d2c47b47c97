"""Retiring an earlier identity when a CLI links itself to a dashboard account (docs/wire-extensions.md).

A personal CLI link binds the joining key to the account's member. When the CLI already had an identity in that
mesh, it proves it holds that identity's key by signing `replace|<meshId>|<oldMemberId>|<newPubkey>|<timestamp>`;
the server then retires the old member, so one person is one member.
"""

from __future__ import annotations

import time
from typing import Any

from protocol.crypto import sign_detached_hex, verify_detached_hex
from protocol.encoding import js_number

MAX_SKEW_MS = 5 * 60 * 1000


def replace_canonical(*, mesh_id: str, old_member_id: str, new_pubkey: str, timestamp: int | float) -> str:
    return f"replace|{mesh_id}|{old_member_id}|{new_pubkey}|{js_number(timestamp)}"


def replace_fields(*, mesh_id: str, old_member_id: str, old_secret_hex: str, new_pubkey: str,
                   timestamp: int | None = None) -> dict[str, Any]:
    stamp = int(time.time() * 1000) if timestamp is None else timestamp
    text = replace_canonical(mesh_id=mesh_id, old_member_id=old_member_id, new_pubkey=new_pubkey, timestamp=stamp)
    return {"memberId": old_member_id, "timestamp": stamp,
            "signature": sign_detached_hex(old_secret_hex, text.encode("utf-8"))}


def replace_valid(*, mesh_id: str, old_member_id: str, old_pubkey: str, new_pubkey: str, timestamp: Any,
                  signature: Any, now_ms: int | None = None) -> bool:
    if not isinstance(timestamp, int) or isinstance(timestamp, bool) or not isinstance(signature, str):
        return False
    now = int(time.time() * 1000) if now_ms is None else now_ms
    if abs(now - timestamp) > MAX_SKEW_MS:
        return False
    text = replace_canonical(mesh_id=mesh_id, old_member_id=old_member_id, new_pubkey=new_pubkey, timestamp=timestamp)
    return verify_detached_hex(old_pubkey, text.encode("utf-8"), signature)
