"""The keyring frames the broker writes (docs/wire-extensions.md "Keyring"). Pure functions; one shape each."""

from __future__ import annotations

from typing import Any

from broker.wire import system_push
from protocol.vocabulary import Priority


def key_list(listing: Any) -> dict[str, Any]:
    """From a `selectors_keyring.KeyListing`."""
    return {
        "type": "key_list",
        "scope": listing.scope,
        "current": listing.current,
        "keys": [{"epoch": epoch, "wrap": wrap} for epoch, wrap in listing.wraps],
        "holders": listing.holders,
        "waiting": listing.waiting,
    }


def key_stored(scope: str, epoch: int, outcome: Any) -> dict[str, Any]:
    return {"type": "key_stored", "scope": scope, "epoch": epoch, "stored": outcome.stored, "skipped": outcome.skipped}


def key_request_ack(scope: str, *, holders: int, online: int) -> dict[str, Any]:
    return {"type": "key_request_ack", "scope": scope, "holders": holders, "holdersOnline": online}


def key_requested(mesh_id: str, *, scope: str, member_id: str, pubkey: str) -> dict[str, Any]:
    """To holders: a member waits for this scope's keys (a system event, never stored)."""
    return system_push(mesh_id, "key_requested", {"scope": scope, "memberId": member_id, "pubkey": pubkey},
                       Priority.NOW)


def key_granted(mesh_id: str, *, scope: str, epoch: int) -> dict[str, Any]:
    """To a requester: a holder shared keys of this scope; fetch them with `key_get`."""
    return system_push(mesh_id, "key_granted", {"scope": scope, "epoch": epoch}, Priority.NOW)
