"""The wire's closed vocabularies (protocol.md §3.3, §4.3; platform.md API keys): one spelling for both sides.

The server's model choices take their values from here, so a new word is added once.
"""

from __future__ import annotations

from enum import StrEnum

from protocol.encoding import HEX64


class Priority(StrEnum):
    NOW = "now"
    NEXT = "next"
    LOW = "low"


class Status(StrEnum):
    IDLE = "idle"
    WORKING = "working"
    DND = "dnd"


class PushSubtype(StrEnum):
    SYSTEM = "system"  # a broker event
    REMINDER = "reminder"  # a scheduled delivery (§5.7)
    WEBHOOK = "webhook"


WEBHOOK_SENDER_PREFIX = "webhook:"  # a webhook push's senderPubkey: "webhook:<name>" (§6.9)


class TaskStatus(StrEnum):
    OPEN = "open"
    CLAIMED = "claimed"
    DONE = "done"


class ApiKeyCapability(StrEnum):
    SEND = "send"
    READ = "read"
    STATE_WRITE = "state_write"
    ADMIN = "admin"


class Grant(StrEnum):
    """What a recipient lets one sender do to it (protocol.md §7.3), kept on the recipient's member row."""

    READ = "read"
    DM = "dm"
    BROADCAST = "broadcast"  # `*`, groups and topics
    STATE_READ = "state-read"  # the sender's `state_change` pushes
    STATE_WRITE = "state-write"
    FILE_READ = "file-read"  # files the sender shares with the recipient


GRANT_ALIASES = {"files": Grant.FILE_READ.value, "file": Grant.FILE_READ.value}
DEFAULT_GRANTS: tuple[str, ...] = (Grant.READ, Grant.DM, Grant.BROADCAST, Grant.STATE_READ, Grant.FILE_READ)

PRIORITIES: tuple[str, ...] = tuple(Priority)
GRANTS: tuple[str, ...] = tuple(Grant)


def grant_named(word: str) -> str | None:
    """The capability a word names (`files` is `file-read`), or None when it names none."""
    word = GRANT_ALIASES.get(word, word)
    return word if word in GRANTS else None
STATUSES: tuple[str, ...] = tuple(Status)
API_KEY_CAPABILITIES: tuple[str, ...] = tuple(ApiKeyCapability)


def grants_allow(grants: object, *, sender_keys: tuple[str | None, ...], capability: str) -> bool:
    """The sender's first key with an entry decides (member key, then session key: [PY] §10 item 6); a sender
    with no entry gets the default set; an empty entry blocks it."""
    if isinstance(grants, dict):
        for key in sender_keys:
            if key and key in grants:
                entry = grants[key]
                return isinstance(entry, list) and capability in entry
    return capability in DEFAULT_GRANTS


def is_direct_target(target_spec: str) -> bool:
    """A target spec naming one member or session key in hex (not `*`, `@group` or `#topic`)."""
    return HEX64.fullmatch(target_spec) is not None
