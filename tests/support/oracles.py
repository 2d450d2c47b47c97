"""Independent oracles: base64url and v1 invite tokens built literally from the spec (client.md §3.2, protocol.md
§8.5) with raw PyNaCl, base64 and json, never with the code under test."""

from __future__ import annotations

import base64
import json

import nacl.signing

BROKER = "ws://localhost:8000/ws"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def hand_signing_key(mesh) -> nacl.signing.SigningKey:
    return nacl.signing.SigningKey(bytes.fromhex(mesh.owner_secret_hex())[:32])


def hand_v1(*, signing_key, mesh_id, mesh_slug, expires_at, root_key, role="member", owner_pubkey=None, broker=BROKER):
    """The spec, literally: canonical text → ed25519 detached hex → JSON in the issuer's key order → base64url."""
    owner_pubkey = owner_pubkey or bytes(signing_key.verify_key).hex()
    canonical = f"1|{mesh_id}|{mesh_slug}|{broker}|{expires_at}|{root_key}|{role}|{owner_pubkey}"
    signature = signing_key.sign(canonical.encode("utf-8")).signature.hex()
    payload = {
        "v": 1,
        "mesh_id": mesh_id,
        "mesh_slug": mesh_slug,
        "broker_url": broker,
        "expires_at": expires_at,
        "mesh_root_key": root_key,
        "role": role,
        "owner_pubkey": owner_pubkey,
        "signature": signature,
    }
    token = b64url(json.dumps(payload, separators=(",", ":")).encode("utf-8"))
    return token, payload, canonical
