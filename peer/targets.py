"""Who `<to>` means: a member's or a session's name, a unique prefix of a member id or of a pubkey, `@group`,
`@all` or `*`.

Names and prefixes resolve against the mesh's members (online or not) and its live sessions. A member is
addressed by its member key: the broker hands the message to one of its sessions, or keeps it until one
connects. A session is addressed by its session key. Either way the message is sealed to the member key,
which every session of that member (and the reference client, which tries it second) can open. Anything that
matches more than one member is an error that lists the candidates, never a guess.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

CLI_CHANNEL = "claudemesh-cli"  # hello `channel` of one-shot CLI connections (peer.connection)
HEX_PREFIX = re.compile(r"^[0-9a-fA-F]{4,64}$")
ID_PREFIX = re.compile(r"^[0-9A-Za-z]{6,32}$")
GROUP_NAME = re.compile(r"^[A-Za-z0-9_./-]{1,64}$")


class TargetError(ValueError):
    """`to` does not name exactly one target. `kind` is not_found or ambiguous or invalid."""

    def __init__(self, message: str, kind: str):
        super().__init__(message)
        self.kind = kind


@dataclass(frozen=True)
class Target:
    spec: str  # the wire targetSpec
    multicast: bool  # True for *, @all, @group
    label: str  # how to describe it to a human
    group: str | None = None  # group name for @group (None for * and @all)
    seal_to: str | None = None  # the key a direct message is encrypted to (the recipient's member key)
    topic: str | None = None  # the topic's name for `#<topicId>`


def _candidate(member: dict[str, Any]) -> str:
    online = "online" if member.get("online") else "offline"
    return f"{member.get('displayName') or '?'} (member {str(member.get('memberId', ''))[:8]}, {online})"


def resolve_target(to: str, peers: list[dict[str, Any]], members: list[dict[str, Any]] | None = None,
                   own_session_pubkey: str | None = None) -> Target:
    value = (to or "").strip()
    if not value:
        raise TargetError("no target given", "invalid")
    if value == "*" or value.lower() == "@all":
        return Target(spec=value if value == "*" else "@all", multicast=True, label=value)
    if value.startswith("@"):
        name = value[1:]
        if not GROUP_NAME.fullmatch(name):
            raise TargetError(f"invalid group name {value!r}", "invalid")
        return Target(spec=value, multicast=True, label=value, group=name)
    if value.startswith("#"):  # topics resolve against the topic list (peer.topics), not people
        raise TargetError(f"{value!r} is a topic: resolve it with the mesh's topic list", "invalid")
    members = members or []
    sessions = [p for p in peers if p.get("pubkey") != own_session_pubkey]
    target = _by_name(value, sessions, members)
    if target is None and (HEX_PREFIX.fullmatch(value) or ID_PREFIX.fullmatch(value)):
        target = _by_prefix(value, sessions, members)
    if target is not None:
        return target
    known = ", ".join(_candidate(m) for m in members) or ", ".join(
        sorted({str(p.get("displayName")) for p in sessions})) or "nobody"
    raise TargetError(f"no member or session called {value!r}. members: {known}", "not_found")


def _by_name(value: str, sessions: list[dict[str, Any]], members: list[dict[str, Any]]) -> Target | None:
    wanted = value.lower()
    named = [m for m in members if str(m.get("displayName", "")).lower() == wanted]
    if len(named) > 1:
        raise TargetError(
            f"{len(named)} members are called {value!r}: " + ", ".join(_candidate(m) for m in named)
            + " — use a member id prefix",
            "ambiguous",
        )
    if named:
        return _member(named[0])
    named_sessions = [p for p in sessions if str(p.get("displayName", "")).lower() == wanted]
    return _one_of_sessions(value, named_sessions, members) if named_sessions else None


def _by_prefix(value: str, sessions: list[dict[str, Any]], members: list[dict[str, Any]]) -> Target | None:
    hex_prefix = value.lower() if HEX_PREFIX.fullmatch(value) else None
    by_member = [
        m for m in members
        if str(m.get("memberId", "")).startswith(value)
        or (hex_prefix is not None and str(m.get("pubkey", "")).lower().startswith(hex_prefix))
    ]
    by_session = [] if hex_prefix is None else [
        p for p in sessions
        if str(p.get("pubkey", "")).lower().startswith(hex_prefix)
        or str(p.get("memberPubkey", "")).lower().startswith(hex_prefix)
    ]
    owners = {str(m.get("pubkey")).lower() for m in by_member} | {str(p.get("memberPubkey")).lower() for p in by_session}
    if len(owners) > 1:
        listed = [_candidate(m) for m in by_member] + [_describe_session(p) for p in by_session]
        raise TargetError(f"{value!r} matches {len(owners)} members: " + ", ".join(listed), "ambiguous")
    if by_member:
        return _member(by_member[0])
    if by_session:
        return _one_of_sessions(value, by_session, members)
    if hex_prefix is not None and len(hex_prefix) == 64:  # a key we cannot place: the broker decides
        return Target(spec=hex_prefix, multicast=False, label=hex_prefix[:12] + "…", seal_to=hex_prefix)
    return None


def _one_of_sessions(value: str, sessions: list[dict[str, Any]], members: list[dict[str, Any]]) -> Target:
    owners = {str(p.get("memberPubkey") or p.get("pubkey")).lower() for p in sessions}
    if len(owners) > 1:
        raise TargetError(
            f"{len(sessions)} sessions of different members are called {value!r}: "
            + ", ".join(_describe_session(p) for p in sessions) + " — use a member id or pubkey prefix",
            "ambiguous",
        )
    long_lived = [p for p in sessions if p.get("channel") != CLI_CHANNEL]
    if len(long_lived) == 1 or len(sessions) == 1:
        session = (long_lived or sessions)[0]
        member_key = str(session.get("memberPubkey") or session["pubkey"]).lower()
        return Target(spec=str(session["pubkey"]).lower(), multicast=False,
                      label=str(session.get("displayName") or member_key[:12]), seal_to=member_key)
    # Several sessions of one member: address the member, the broker picks its long-lived session.
    owner = owners.pop()
    member = next((m for m in members if str(m.get("pubkey", "")).lower() == owner), None)
    if member is not None:
        return _member(member)
    return Target(spec=owner, multicast=False, label=str(sessions[0].get("displayName") or owner[:12]), seal_to=owner)


def _member(member: dict[str, Any]) -> Target:
    pubkey = str(member["pubkey"]).lower()
    return Target(spec=pubkey, multicast=False, label=str(member.get("displayName") or pubkey[:12]), seal_to=pubkey)


def _describe_session(peer: dict[str, Any]) -> str:
    return f"{peer.get('displayName') or '?'} (session {str(peer.get('pubkey', ''))[:12]}…)"
