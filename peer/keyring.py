"""This member's side of the mesh keyring (docs/encryption.md "The mesh keyring"): the scope keys it holds, on
disk; getting, making, rotating and sharing them over one connection. Formats live in `protocol.keyring`.

- `KeyStore`: `keyring/<meshId>.json` (0600) next to the config. Keys are only ever added (an epoch never
  changes), so several processes of one member merge their writes under a file lock.
- `ScopeKeys`: the exchange. Before a send it makes sure the current epoch is held, shared with every member of
  the scope and held by nobody else (else it rotates); for reading it fetches a missing epoch or asks holders for
  it; and it answers other members' requests with the epochs it holds.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from peer.config import atomic_write_text
from peer.connection_terms import RequestFailed
from protocol.crypto import SigningKeypair
from protocol.encoding import EncodingError, b64_decode, b64_encode
from protocol.keyring import KeyringError, new_scope_key, open_wrap, wrap_key

KEYRING_DIR = "keyring"
WRAPS_PER_FRAME = 128
GRANT_WAIT_SECONDS = 5.0  # a sender without the current key waits this long for a holder before starting a new epoch
REQUEST_EVERY_SECONDS = 60.0  # a reader asks again for a scope's keys at most this often
REFETCH_SECONDS = 2.0  # a reader looks for one missing epoch again at most this often (a history page has 200 messages)

Members = dict[str, str]  # member id → ed25519 pubkey
MembersOf = Callable[[str], Awaitable[Members]]  # scope → its members (as the broker says)


class KeyStore:
    def __init__(self, directory: Path, mesh_id: str):
        self.path = Path(directory) / KEYRING_DIR / f"{mesh_id}.json"
        self._lock_path = self.path.with_suffix(".lock")
        self._scopes: dict[str, dict[int, bytes]] = {}
        self._high: dict[str, int] = {}
        self._loaded_mtime: float | None = None

    def key(self, scope: str, epoch: int) -> bytes | None:
        self._refresh()
        return self._scopes.get(scope, {}).get(epoch)

    def epochs(self, scope: str) -> dict[int, bytes]:
        self._refresh()
        return dict(self._scopes.get(scope, {}))

    def highest(self, scope: str) -> int:
        """The highest epoch this member ever held: a broker reporting less is replaying an old one."""
        self._refresh()
        return self._high.get(scope, 0)

    def add(self, scope: str, keys: dict[int, bytes]) -> None:
        if not keys:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        with open(self._lock_path, "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            self._loaded_mtime = None
            self._refresh()
            held = self._scopes.setdefault(scope, {})
            for epoch, key in keys.items():
                held.setdefault(epoch, key)  # never replaced: the first key of an epoch is the epoch's key
            self._high[scope] = max([self._high.get(scope, 0), *held])
            data = {
                "scopes": {
                    name: {"epochs": {str(e): b64_encode(k) for e, k in sorted(epochs.items())}, "high": self._high.get(name, 0)}
                    for name, epochs in self._scopes.items()
                }
            }
            atomic_write_text(self.path, json.dumps(data, indent=1))
            self._loaded_mtime = self.path.stat().st_mtime

    def _refresh(self) -> None:
        try:
            mtime = self.path.stat().st_mtime
        except FileNotFoundError:
            return
        if mtime == self._loaded_mtime:
            return
        try:
            data = json.loads(self.path.read_text())
            scopes = {
                name: {int(e): b64_decode(k) for e, k in entry.get("epochs", {}).items()}
                for name, entry in data.get("scopes", {}).items()
            }
            high = {name: int(entry.get("high", 0)) for name, entry in data.get("scopes", {}).items()}
        except (OSError, ValueError, EncodingError, AttributeError) as exc:
            raise KeyringError(f"keyring file {self.path} is unreadable: {exc}") from exc
        self._scopes, self._high, self._loaded_mtime = scopes, high, mtime


@dataclass(frozen=True)
class Listing:
    current: int
    holders: set[str]
    waiting: set[str]


class ScopeKeys:
    """`request(frame, reply_type)` is the connection's; `member` is this identity's keypair and member id."""

    def __init__(self, *, store: KeyStore, mesh_id: str, member_id: str, member: SigningKeypair,
                 request: Callable[..., Awaitable[dict[str, Any]]], members_of: MembersOf):
        self.store = store
        self.mesh_id = mesh_id
        self.member_id = member_id
        self.member = member
        self._request = request
        self._members_of = members_of
        self._granted: dict[str, asyncio.Event] = {}
        self._asked_at: dict[str, float] = {}
        self._missed_at: dict[tuple[str, int], float] = {}  # an epoch looked for and not found, when
        self.rejected: list[str] = []  # why wraps were refused (forged, moved, not from a member): shown by doctor

    # --- fetching -----------------------------------------------------------------------------------------

    async def fetch(self, scope: str, roster: set[str]) -> Listing:
        """`key_get`: open and keep every wrap of ours not yet held, granted by a member of the mesh."""
        reply = await self._request({"type": "key_get", "scope": scope}, "key_list")
        held = self.store.epochs(scope)
        opened: dict[int, bytes] = {}
        for entry in reply.get("keys") or []:
            epoch = entry.get("epoch") if isinstance(entry, dict) else None
            if not isinstance(epoch, int) or epoch in held:
                continue
            try:
                key, granter = open_wrap(entry.get("wrap"), mesh_id=self.mesh_id, scope=scope, epoch=epoch,
                                         recipient=self.member)
            except KeyringError as exc:
                self.rejected.append(f"{scope} epoch {epoch}: {exc}")
                continue
            if granter not in roster:
                self.rejected.append(f"{scope} epoch {epoch}: granted by {granter[:12]}…, not a member of this mesh")
                continue
            opened[epoch] = key
        self.store.add(scope, opened)
        current = reply.get("current") if isinstance(reply.get("current"), int) else 0
        return Listing(current, set(reply.get("holders") or []), set(reply.get("waiting") or []))

    # --- sending ------------------------------------------------------------------------------------------

    async def for_send(self, scope: str, roster: set[str]) -> tuple[int, bytes]:
        """The epoch to send with: held by us, shared with every member of the scope, held by no one else."""
        for _ in range(3):
            listing = await self.fetch(scope, roster)
            if listing.current < self.store.highest(scope):
                raise RequestFailed(
                    "key_epoch_replayed",
                    f"the broker reports key epoch {listing.current} of {scope}, but this member has held epoch "
                    f"{self.store.highest(scope)}: refusing to send with an old key",
                )
            members = await self._members_of(scope)
            if self.member_id not in members:
                raise RequestFailed("not_in_scope", f"you are not a member of {scope}")
            key = self.store.key(scope, listing.current) if listing.current else None
            if listing.current and key is None:
                key = await self.wait_for_grant(scope, listing.current, roster)
            if key is None or not listing.holders <= members.keys():
                try:
                    return await self._start_epoch(scope, listing.current + 1, members)
                except RequestFailed as exc:
                    if exc.code == "epoch_exists":
                        continue  # someone else started it meanwhile: use theirs
                    raise
            missing = {mid: pk for mid, pk in members.items() if mid not in listing.holders}
            if missing:
                await self._put(scope, listing.current, key, missing, create=False)
            return listing.current, key
        raise RequestFailed("epoch_exists", f"{scope}: the key epoch keeps changing; try again")

    async def wait_for_grant(self, scope: str, epoch: int, roster: set[str]) -> bytes | None:
        """Ask the scope's holders for it and wait up to GRANT_WAIT_SECONDS for one to share it."""
        event = self._granted.setdefault(scope, asyncio.Event())
        event.clear()
        with contextlib.suppress(RequestFailed):
            await self._request({"type": "key_request", "scope": scope}, "key_request_ack")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), GRANT_WAIT_SECONDS)
            await self.fetch(scope, roster)
        return self.store.key(scope, epoch)

    async def _start_epoch(self, scope: str, epoch: int, members: Members) -> tuple[int, bytes]:
        key = new_scope_key()
        await self._put(scope, epoch, key, members, create=True)
        self.store.add(scope, {epoch: key})
        return epoch, key

    async def _put(self, scope: str, epoch: int, key: bytes, recipients: Members, *, create: bool) -> None:
        """Our own wrap first (so we hold the epoch from the first frame on), then the rest, 128 a frame."""
        ordered = sorted(recipients.items(), key=lambda item: item[0] != self.member_id)
        for start in range(0, len(ordered), WRAPS_PER_FRAME):
            wraps = [
                {"memberId": member_id, "wrap": wrap_key(key, mesh_id=self.mesh_id, scope=scope, epoch=epoch,
                                                         recipient_pubkey=pubkey, granter=self.member)}
                for member_id, pubkey in ordered[start : start + WRAPS_PER_FRAME]
            ]
            frame = {"type": "key_put", "scope": scope, "epoch": epoch, "create": create and start == 0, "wraps": wraps}
            await self._request(frame, "key_stored")

    # --- reading ------------------------------------------------------------------------------------------

    async def for_reading(self, scope: str, epoch: int, roster: set[str]) -> bytes | None:
        """The epoch's key, fetched if the broker has a wrap for us; else holders are asked (None meanwhile)."""
        key = self.store.key(scope, epoch)
        if key is not None:
            return key
        if time.monotonic() - self._missed_at.get((scope, epoch), -REFETCH_SECONDS) >= REFETCH_SECONDS:
            with contextlib.suppress(RequestFailed):
                await self.fetch(scope, roster)
                key = self.store.key(scope, epoch)
            if key is None:
                self._missed_at[(scope, epoch)] = time.monotonic()
        if key is None and time.monotonic() - self._asked_at.get(scope, -REQUEST_EVERY_SECONDS) >= REQUEST_EVERY_SECONDS:
            self._asked_at[scope] = time.monotonic()
            with contextlib.suppress(RequestFailed):
                await self._request({"type": "key_request", "scope": scope}, "key_request_ack")
        return key

    def granted(self, scope: str) -> None:
        """A holder shared keys of this scope with us (`key_granted`)."""
        self._asked_at.pop(scope, None)
        for missed in [m for m in self._missed_at if m[0] == scope]:
            del self._missed_at[missed]
        self._granted.setdefault(scope, asyncio.Event()).set()

    # --- sharing ------------------------------------------------------------------------------------------

    async def share(self, scope: str, requester_id: str, requester_pubkey: str) -> int:
        """Answer a `key_requested`: wrap every epoch we hold for a requester who is a member of the scope."""
        held = self.store.epochs(scope)
        if not held or requester_id == self.member_id:
            return 0
        try:
            members = await self._members_of(scope)
        except RequestFailed:  # e.g. we were removed meanwhile: nothing to share
            return 0
        if members.get(requester_id, "").lower() != requester_pubkey.lower():
            return 0  # not (or no longer) in the scope, or a key the broker swapped: share nothing
        shared = 0
        for epoch, key in sorted(held.items()):
            try:
                await self._put(scope, epoch, key, {requester_id: members[requester_id]}, create=False)
                shared += 1
            except RequestFailed:
                continue  # e.g. an epoch the broker no longer lists for us to share
        return shared
