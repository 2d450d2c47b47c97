"""Member-signed HTTP requests (docs/wire-extensions.md): the member's ed25519 signature over the method, the
path, the mesh, the member, a millisecond timestamp and the body's SHA-256, sent in three headers. A route that
accepts them knows which member asks without an account token; a replayed request is refused by the server."""

from __future__ import annotations

import hashlib
import time

from protocol.crypto import sign_detached_hex, verify_detached_hex

MEMBER_HEADER = "X-Claudemesh-Member"  # "<meshId>/<memberId>"
TIMESTAMP_HEADER = "X-Claudemesh-Timestamp"  # unix milliseconds
SIGNATURE_HEADER = "X-Claudemesh-Signature"  # 128 hex chars
MAX_SKEW_MS = 60_000


def request_canonical(*, method: str, path: str, mesh_id: str, member_id: str, timestamp: int, body: bytes) -> bytes:
    digest = hashlib.sha256(body).hexdigest()
    return f"claudemesh-http-v1\n{method.upper()}\n{path}\n{mesh_id}\n{member_id}\n{timestamp}\n{digest}".encode()


def signed_headers(*, method: str, path: str, mesh_id: str, member_id: str, secret_hex: str, body: bytes = b"",
                   timestamp: int | None = None) -> dict[str, str]:
    stamp = int(time.time() * 1000) if timestamp is None else timestamp
    text = request_canonical(method=method, path=path, mesh_id=mesh_id, member_id=member_id, timestamp=stamp, body=body)
    return {
        MEMBER_HEADER: f"{mesh_id}/{member_id}",
        TIMESTAMP_HEADER: str(stamp),
        SIGNATURE_HEADER: sign_detached_hex(secret_hex, text),
    }


def request_signature_valid(*, method: str, path: str, mesh_id: str, member_id: str, pubkey: str, timestamp: int,
                            body: bytes, signature: str, now_ms: int | None = None) -> bool:
    now = int(time.time() * 1000) if now_ms is None else now_ms
    if abs(now - timestamp) > MAX_SKEW_MS:
        return False
    text = request_canonical(method=method, path=path, mesh_id=mesh_id, member_id=member_id, timestamp=timestamp, body=body)
    return verify_detached_hex(pubkey, text, signature)
