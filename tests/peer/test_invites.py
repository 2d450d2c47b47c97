"""A v1 invite built by hand from the canonical string verifies; expired or tampered ones fail before any
network call (client.md §3.2)."""

from __future__ import annotations

import base64
import json
import time

import nacl.signing
import pytest

from peer.enroll import EnrollError, join_v1
from peer.links import V1Token, parse_invite
from protocol.invites import InviteError, v1_verify


def hand_made_token(*, expires_at: int | None = None, tamper: bool = False) -> tuple[str, dict]:
    owner = nacl.signing.SigningKey.generate()
    owner_pub = bytes(owner.verify_key).hex()
    fields = {
        "v": 1,
        "mesh_id": "MeshIdMeshIdMeshIdMeshIdMeshId12",
        "mesh_slug": "team",
        "broker_url": "ws://127.0.0.1:9/ws",
        "expires_at": expires_at if expires_at is not None else int(time.time()) + 3600,
        "mesh_root_key": base64.urlsafe_b64encode(b"r" * 32).rstrip(b"=").decode(),
        "role": "member",
        "owner_pubkey": owner_pub,
    }
    canonical = "|".join(str(fields[k]) for k in
                         ("v", "mesh_id", "mesh_slug", "broker_url", "expires_at", "mesh_root_key", "role", "owner_pubkey"))
    fields["signature"] = owner.sign(canonical.encode()).signature.hex()
    if tamper:
        fields["mesh_slug"] = "evil"
    token = base64.urlsafe_b64encode(json.dumps(fields, separators=(",", ":")).encode()).rstrip(b"=").decode()
    return token, fields


def test_hand_made_v1_link_parses_and_verifies():
    token, fields = hand_made_token()
    parsed = parse_invite(f"https://claudemesh.com/join/{token}")
    assert parsed == V1Token(token)
    assert v1_verify(parsed.token) == fields


def test_expired_invite_is_rejected_before_enrolling():
    token, _ = hand_made_token(expires_at=int(time.time()) - 10)
    with pytest.raises(EnrollError, match="this invite has expired") as info:
        join_v1(token, display_name="x")
    assert info.value.kind == "rejected" and "ask whoever sent it" in info.value.hint


def test_tampered_invite_is_rejected_before_enrolling():
    token, _ = hand_made_token(tamper=True)
    with pytest.raises(EnrollError, match="signature invalid") as info:
        join_v1(token, display_name="x")
    assert info.value.kind == "invalid"


def test_unreachable_broker_is_a_network_error():
    token, _ = hand_made_token()
    with pytest.raises(EnrollError) as info:
        join_v1(token, display_name="x")
    assert info.value.kind == "network"


def test_garbage_token():
    with pytest.raises(InviteError):
        v1_verify("x" * 40)
