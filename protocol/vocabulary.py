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


class TaskStatus(StrEnum):
    OPEN = "open"
    CLAIMED = "claimed"
    DONE = "done"


class ApiKeyCapability(StrEnum):
    SEND = "send"
    READ = "read"
    STATE_WRITE = "state_write"
    ADMIN = "admin"


PRIORITIES: tuple[str, ...] = tuple(Priority)
STATUSES: tuple[str, ...] = tuple(Status)
API_KEY_CAPABILITIES: tuple[str, ...] = tuple(ApiKeyCapability)


def is_direct_target(target_spec: str) -> bool:
    """A target spec naming one member or session key in hex (not `*`, `@group` or `#topic`)."""
    return HEX64.fullmatch(target_spec) is not None
