"""Who `<to>` means: a display name, a pubkey or unique pubkey prefix, `@group`, `@all` or `*`.

Names and prefixes resolve against the live peer list (direct messages need a live recipient). Anything
that matches more than one peer is an error that lists the candidates, never a guess.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

CLI_CHANNEL = "claudemesh-cli"  # hello `channel` of one-shot CLI connections (peer.connection)
HEX_PREFIX = re.compile(r"^[0-9a-fA-F]{4,64}$")
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


def describe_peer(peer: dict[str, Any]) -> str:
    return f"{peer.get('displayName') or '?'} ({str(peer.get('pubkey', ''))[:12]}…)"


def resolve_target(to: str, peers: list[dict[str, Any]], own_session_pubkey: str | None = None) -> Target:
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
    if value.startswith("#"):
        raise TargetError("topics (#name) are not supported by this client; use @group or *", "invalid")
    others = [p for p in peers if p.get("pubkey") != own_session_pubkey]

    by_name = [p for p in others if str(p.get("displayName", "")).lower() == value.lower()]
    if len(by_name) > 1:
        # A person's short-lived CLI connections share their name; the long-lived session is the one meant.
        long_lived = [p for p in by_name if p.get("channel") != CLI_CHANNEL]
        by_name = long_lived or by_name
    if len(by_name) == 1:
        return _direct(by_name[0])
    if len(by_name) > 1:
        raise TargetError(
            f"{len(by_name)} peers are named {value!r}: " + ", ".join(describe_peer(p) for p in by_name)
            + " — use a pubkey prefix",
            "ambiguous",
        )
    if HEX_PREFIX.fullmatch(value):
        prefix = value.lower()
        matches = _unique_by_pubkey(
            p for p in others
            if str(p.get("pubkey", "")).lower().startswith(prefix) or str(p.get("memberPubkey", "")).lower().startswith(prefix)
        )
        if len(matches) == 1:
            return _direct(matches[0])
        if len(matches) > 1:
            raise TargetError(
                f"pubkey prefix {value!r} matches {len(matches)} peers: " + ", ".join(describe_peer(p) for p in matches),
                "ambiguous",
            )
        if len(prefix) == 64:
            return Target(spec=prefix, multicast=False, label=prefix[:12] + "…")
        raise TargetError(f"no online peer's pubkey starts with {value!r}", "not_found")
    online = ", ".join(sorted({str(p.get("displayName")) for p in others})) or "nobody"
    raise TargetError(f"peer {value!r} not found. online: {online}", "not_found")


def _direct(peer: dict[str, Any]) -> Target:
    pubkey = str(peer["pubkey"]).lower()
    return Target(spec=pubkey, multicast=False, label=str(peer.get("displayName") or pubkey[:12]))


def _unique_by_pubkey(peers) -> list[dict[str, Any]]:
    seen: dict[str, dict[str, Any]] = {}
    for peer in peers:
        seen.setdefault(str(peer.get("pubkey")), peer)
    return list(seen.values())
