"""The hello checks (protocol.md §2.4): each step a named function, run in the reference's order, so the
first failing step decides the error code. Pure except `hello_lookup`, the one read the checks need.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from broker import conf
from broker.presence_fields import clean_groups, opt_str
from broker.services.liveness import live_presences
from meshes.models import Member, Mesh
from meshes.text import storable
from protocol.encoding import HEX64, HEX128
from protocol.hello import hello_signature_valid
from protocol.ids import is_id_fragment

SESSION_PUBKEY = re.compile(r"^[0-9a-f]{64}$")
OPTIONAL_TEXT_LIMITS = {"displayName": 200, "hostname": 255, "peerType": 32, "channel": 64, "model": 128}


class HandshakeRejected(Exception):
    """One handshake failure: an `error` frame, then close with `close_code` / `reason`."""

    def __init__(self, code: str, message: str | None = None, *, close_code: int = 1008, reason: str | None = None):
        super().__init__(code)
        self.code = code
        self.message = message or f"hello rejected: {code}"
        self.close_code = close_code
        self.reason = reason or code


@dataclass(frozen=True)
class Hello:
    mesh_id: str
    member_id: str
    pubkey: str
    session_pubkey: str | None
    session_id: str
    pid: int
    cwd: str
    display_name: str | None
    hostname: str | None
    peer_type: str | None
    channel: str | None
    model: str | None
    groups: list[dict[str, str]]
    delivery_ack: bool
    signed_hooks: bool = False


@dataclass(frozen=True)
class HelloLookup:
    live_count: int
    member: Member | None
    mesh: Mesh | None
    revoked: bool
    member_live_count: int = 0  # the member's live connections, not counting the one this hello replaces


def hello_lookup(*, mesh_id: Any, pubkey: Any, session_id: Any = None) -> HelloLookup:
    if not is_id_fragment(mesh_id):
        return HelloLookup(0, None, None, False)
    mesh = Mesh.objects.filter(pk=mesh_id).first()
    live_count = live_presences().filter(mesh_id=mesh_id).count()
    if mesh is None or not isinstance(pubkey, str) or not HEX64.fullmatch(pubkey):  # no member has any other key
        return HelloLookup(live_count, None, mesh, False)
    rows = list(Member.objects.filter(mesh_id=mesh_id, pubkey=pubkey).order_by("revoked_at"))
    member = next((m for m in rows if m.revoked_at is None), None)
    member_live_count = 0
    if member is not None:
        own = live_presences().filter(mesh_id=mesh_id, member_id=member.id)
        if isinstance(session_id, str) and storable(session_id):
            own = own.exclude(session_id=session_id[:200])
        member_live_count = own.count()
    return HelloLookup(live_count, member, mesh, revoked=member is None and bool(rows), member_live_count=member_live_count)


# --- the steps, in order --------------------------------------------------------------------------------


def check_session_pubkey(frame: dict[str, Any]) -> str | None:
    """Step 1. "" / null mean absent ([PY] §10 item 12)."""
    value = frame.get("sessionPubkey")
    if value in (None, ""):
        return None
    if not isinstance(value, str) or not SESSION_PUBKEY.fullmatch(value):
        raise HandshakeRejected("bad_session_pubkey", "sessionPubkey must be 64 lowercase hex chars")
    return value


def _check_capacity(lookup: HelloLookup) -> None:
    if lookup.live_count >= conf.max_connections_per_mesh():
        raise HandshakeRejected("capacity", "mesh at connection capacity")


def _check_timestamp(frame: dict[str, Any], now_ms: int) -> None:
    stamp = frame.get("timestamp")
    if (
        isinstance(stamp, bool)
        or not isinstance(stamp, (int, float))
        or (isinstance(stamp, float) and not math.isfinite(stamp))  # isfinite() overflows on huge ints
        or abs(now_ms - stamp) > conf.HELLO_MAX_SKEW_MS
    ):
        raise HandshakeRejected("timestamp_skew")


def _check_signature(frame: dict[str, Any]) -> None:
    mesh_id, member_id = frame.get("meshId"), frame.get("memberId")
    pubkey, signature = frame.get("pubkey"), frame.get("signature")
    if not (isinstance(pubkey, str) and HEX64.fullmatch(pubkey) and isinstance(signature, str) and HEX128.fullmatch(signature)):
        raise HandshakeRejected("malformed")
    if not isinstance(mesh_id, str) or not isinstance(member_id, str):
        raise HandshakeRejected("malformed")
    try:
        valid = hello_signature_valid(
            mesh_id=mesh_id, member_id=member_id, pubkey=pubkey, timestamp=frame["timestamp"], signature=signature
        )
    except Exception:  # the reference maps a verifier exception to `malformed`
        raise HandshakeRejected("malformed") from None
    if not valid:
        raise HandshakeRejected("bad_signature")


def _check_membership(lookup: HelloLookup, mesh_id: str) -> Member:
    if lookup.member is None:
        if lookup.revoked:
            mesh = lookup.mesh
            name = (mesh.name or mesh.slug or mesh.id) if mesh else mesh_id
            raise HandshakeRejected(
                "revoked",
                f'You\'ve been removed from "{name}". Contact the mesh owner to rejoin.',
                close_code=4002,
                reason="banned",
            )
        raise HandshakeRejected("unauthorized", "pubkey not found in mesh")
    if lookup.mesh is not None and lookup.mesh.is_archived:
        raise HandshakeRejected("mesh_archived", "this mesh is archived", close_code=4002, reason="mesh_archived")
    return lookup.member


def _check_session_fields(frame: dict[str, Any]) -> None:
    session_id, pid, cwd = frame.get("sessionId"), frame.get("pid"), frame.get("cwd")
    if (
        not isinstance(session_id, str)
        or not session_id
        or isinstance(pid, bool)
        or not isinstance(pid, (int, float))
        or not isinstance(cwd, str)
    ):
        raise HandshakeRejected("malformed")


def _check_member_capacity(lookup: HelloLookup) -> None:
    """[PY] One member holds at most its share of the mesh, so it cannot lock the others out."""
    limit = conf.max_connections_per_member()
    if lookup.member_live_count >= limit:
        raise HandshakeRejected(
            "member_capacity", f"this member already has {limit} live connections (the most one member may hold)"
        )


def _check_storable(frame: dict[str, Any]) -> None:
    """Values the presence row cannot hold (NUL, lone surrogates, a pid outside bigint) would fail the insert and
    leave the socket open and unauthenticated: refuse them as malformed instead."""
    texts = [frame["sessionId"], frame["cwd"]]
    texts += [value for key in OPTIONAL_TEXT_LIMITS if isinstance(value := frame.get(key), str)]
    texts += [text for group in clean_groups(frame.get("groups")) for text in group.values()]
    if not -(2**63) <= frame["pid"] < 2**63 or not all(storable(text) for text in texts):  # NaN and ±inf fail it too
        raise HandshakeRejected("malformed")


def check_hello(*, frame: dict[str, Any], lookup: HelloLookup, now_ms: int) -> Hello:
    """Steps 1–6 of §2.4 in the reference's order, then the fields the presence row needs and the member's cap."""
    session_pubkey = check_session_pubkey(frame)
    _check_capacity(lookup)
    _check_timestamp(frame, now_ms)
    _check_signature(frame)
    member = _check_membership(lookup, frame["meshId"])
    _check_session_fields(frame)
    _check_storable(frame)
    _check_member_capacity(lookup)
    return Hello(
        mesh_id=frame["meshId"],
        member_id=member.id,
        pubkey=frame["pubkey"],
        session_pubkey=session_pubkey,
        session_id=frame["sessionId"][:200],
        pid=int(frame["pid"]),
        cwd=frame["cwd"],
        display_name=opt_str(frame.get("displayName"), OPTIONAL_TEXT_LIMITS["displayName"]),
        hostname=opt_str(frame.get("hostname"), OPTIONAL_TEXT_LIMITS["hostname"]),
        peer_type=opt_str(frame.get("peerType"), OPTIONAL_TEXT_LIMITS["peerType"]),
        channel=opt_str(frame.get("channel"), OPTIONAL_TEXT_LIMITS["channel"]),
        model=opt_str(frame.get("model"), OPTIONAL_TEXT_LIMITS["model"]),
        groups=clean_groups(frame.get("groups")),
        delivery_ack=frame.get("deliveryAck") is True,
        signed_hooks=frame.get("signedHooks") is True,
    )
