"""Sealing and opening coordination records with the mesh keyring (docs/encryption.md "Coordination records"): state
values, memories, task titles and results go to the broker as `CMS1` records in the `mesh` scope, and memories
carry blind word tokens under the same epoch's search key."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from peer.connection_terms import RequestFailed
from peer.inbox import WAITING
from peer.keyring import ScopeKeys
from protocol.crypto import SigningKeypair
from protocol.records import RECORD_SCOPE, RecordError, blind_tokens, open_record, parse_sealed, seal_record, search_key

QUERY_EPOCHS = 8  # a recall asks with the search keys of the newest epochs this member holds


@dataclass(frozen=True)
class Opened:
    value: Any
    failure: str | None = None  # why `value` is None: forged, moved, not a member's, waiting for the key
    author: str | None = None  # the member key that sealed it


class RecordSealer:
    """`roster()` is the client's: the mesh's member keys (who may author a record)."""

    def __init__(self, *, keys: ScopeKeys, mesh_id: str, author: SigningKeypair,
                 roster: Callable[[], Awaitable[set[str]]]):
        self.keys = keys
        self.mesh_id = mesh_id
        self.author = author
        self._roster = roster
        self._waited: set[int] = set()  # epochs already waited for once: a listing waits at most once per epoch

    async def seal(self, value: Any, *, kind: str, name: str | None, words_of: str | None = None
                   ) -> tuple[dict[str, str], list[str]]:
        """(sealed record, blind tokens of `words_of` under the same epoch's search key)."""
        epoch, key = await self.keys.for_send(RECORD_SCOPE, await self._roster())
        sealed = seal_record(value, kind=kind, name=name, mesh_id=self.mesh_id, epoch=epoch, key=key, author=self.author)
        tokens = blind_tokens(words_of, search_key(key)) if words_of else []
        return sealed.as_wire(), tokens

    async def open(self, sealed: Any, *, kind: str, name: str | None) -> Opened:
        try:
            envelope, nonce = parse_sealed(sealed)
        except RecordError as exc:
            return Opened(None, str(exc))
        roster = await self._roster()
        if envelope.author not in roster:
            return Opened(None, "sealed by a key that is not a member of this mesh", envelope.author)
        key = await self._key(envelope.epoch, roster)
        if key is None:
            return Opened(None, WAITING, envelope.author)
        try:
            return Opened(open_record(envelope, nonce, kind=kind, name=name, mesh_id=self.mesh_id, key=key),
                          None, envelope.author)
        except RecordError as exc:
            return Opened(None, str(exc), envelope.author)

    async def _key(self, epoch: int, roster: set[str]) -> bytes | None:
        """The epoch's key; missing, a holder is asked and waited for (once per epoch), since a member who joined
        after a record was sealed only gets the key from a holder."""
        key = await self.keys.for_reading(RECORD_SCOPE, epoch, roster)
        if key is None and epoch not in self._waited:
            self._waited.add(epoch)
            key = await self.keys.wait_for_grant(RECORD_SCOPE, epoch, roster)
        return key

    async def query_tokens(self, text: str) -> list[str]:
        """A recall's tokens: the query's words under every recent epoch's search key (memories keep the epoch
        they were written in)."""
        held = self.keys.store.epochs(RECORD_SCOPE)
        if not held:
            roster = await self._roster()
            listing = await self.keys.fetch(RECORD_SCOPE, roster)
            held = self.keys.store.epochs(RECORD_SCOPE)
            if not held and listing.current and await self._key(listing.current, roster) is None:
                raise RequestFailed("waiting_for_key", "this member does not hold the mesh key yet: a member who "
                                    "holds it shares it when online; try again in a moment")
            held = self.keys.store.epochs(RECORD_SCOPE)
        tokens: list[str] = []
        for epoch in sorted(held, reverse=True)[:QUERY_EPOCHS]:
            tokens.extend(t for t in blind_tokens(text, search_key(held[epoch])) if t not in tokens)
        return tokens
