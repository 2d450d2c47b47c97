"""Kick, disconnect, ban, unban, the ban list (protocol.md §5.3) and this member's grants (§7.3) from this peer:
the frames and their replies. Who may do what is the broker's to say (owners and admins moderate; a member sets
its own grants)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from protocol.vocabulary import DEFAULT_GRANTS, GRANTS, grant_named


class Moderation:
    def __init__(self, *, request: Callable[..., Awaitable[dict[str, Any]]]):
        self._request = request

    async def kick(self, *, target: str | None = None, stale_ms: int | None = None, everyone: bool = False,
                   disconnect: bool = False) -> list[str]:
        """The names of the sessions closed: kicked ones (4001) stay out, disconnected ones (1000) may return."""
        frame: dict[str, Any] = {"type": "disconnect" if disconnect else "kick"}
        if everyone:
            frame["all"] = True
        elif stale_ms is not None:
            frame["stale"] = stale_ms
        else:
            frame["target"] = target
        reply = await self._request(frame, ("disconnect_ack" if disconnect else "kick_ack"))
        return [str(name) for name in reply.get("kicked") or []]

    async def ban(self, target: str) -> str:
        return str((await self._request({"type": "ban", "target": target}, "ban_ack")).get("banned"))

    async def unban(self, target: str) -> str:
        return str((await self._request({"type": "unban", "target": target}, "unban_ack")).get("unbanned"))

    async def bans(self) -> list[dict[str, Any]]:
        reply = await self._request({"type": "list_bans"}, "list_bans_result")
        return [b for b in reply.get("bans") or [] if isinstance(b, dict)]

    async def grants(self) -> dict[str, list[str]]:
        return dict((await self._request({"type": "get_grants"}, "grants_result")).get("grants") or {})

    async def set_grants(self, changes: dict[str, list[str] | None]) -> dict[str, list[str]]:
        """`{pubkey: caps}` replaces that sender's entry; `{pubkey: None}` puts it back to the defaults."""
        reply = await self._request({"type": "set_grants", "grants": changes}, "grants_result")
        return dict(reply.get("grants") or {})


def capabilities(words: list[str]) -> list[str]:
    """Capability words as the CLI takes them (`all`, `files` for file-read); ValueError names a bad one."""
    caps: list[str] = []
    for word in words:
        for part in word.split(","):
            part = part.strip().lower()
            if not part:
                continue
            chosen = list(GRANTS) if part == "all" else [grant_named(part)]
            if None in chosen:
                raise ValueError(f"unknown capability {part!r}: use {', '.join(GRANTS)} or all")
            caps += [cap for cap in chosen if cap not in caps]
    return caps


def granted(entry: list[str] | None) -> list[str]:
    """What a sender may do: its entry, or the defaults when it has none."""
    return list(DEFAULT_GRANTS) if entry is None else list(entry)
