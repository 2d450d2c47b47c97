"""Sealed coordination records and blind search tokens (docs/encryption.md "Coordination records"). Pure functions.

A **record** is a state value, a memory, a task's title or its result, sealed as a `CMS1` message in the `mesh`
scope (so every member can read it and the broker cannot), with what it is bound to inside the ciphertext:
`{"kind": …, "name": …, "value": …}`. A broker that moves a sealed value to another state key, or a task's result
to another task, is caught when the reader checks the binding.

A **blind token** is a keyed hash of one normalised word under the scope key's search key: the broker matches a
query's tokens against a memory's without learning the words (it does learn which memories share a word).
"""

from __future__ import annotations

import json
import re
import unicodedata
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import nacl.encoding
import nacl.hash

from protocol.crypto import SigningKeypair
from protocol.encoding import EncodingError, b64_decode
from protocol.keyring import (
    MESH_SCOPE,
    KeyringError,
    ScopeEnvelope,
    open_scope,
    parse_scope,
    seal_scope,
)

RECORD_SCOPE = MESH_SCOPE
TOKEN_BYTES = 16
TOKEN_PATTERN = re.compile(r"^[0-9a-f]{32}$")
MAX_TOKENS_PER_TEXT = 256
_SEARCH_LABEL = b"claudemesh/search-token/v1"
_WORD = re.compile(r"\w+")
# Frequent English words carry no meaning for recall and would only tell the broker how often they occur.
STOP_WORDS = frozenset(
    "a an and are as at be but by for from has have i in is it its of on or that the this to was we were will with"
    " you your".split()
)


class RecordKind(StrEnum):
    """What a record is; with its `name` (the state key, or the task id of a result), what it is bound to."""

    STATE = "state"
    MEMORY = "memory"
    TASK = "task"
    TASK_RESULT = "task_result"


class RecordError(ValueError):
    """A sealed record is malformed, forged, not from a member, or bound to something else."""


@dataclass(frozen=True)
class SealedRecord:
    nonce: str
    ciphertext: str

    def as_wire(self) -> dict[str, str]:
        return {"nonce": self.nonce, "ciphertext": self.ciphertext}


def seal_record(
    value: Any, *, kind: str, name: str | None, mesh_id: str, epoch: int, key: bytes, author: SigningKeypair
) -> SealedRecord:
    text = json.dumps({"kind": kind, "name": name, "value": value}, separators=(",", ":"), ensure_ascii=False)
    nonce, ciphertext = seal_scope(text, mesh_id=mesh_id, scope=RECORD_SCOPE, epoch=epoch, key=key, author=author)
    return SealedRecord(nonce, ciphertext)


def parse_sealed(sealed: object) -> tuple[ScopeEnvelope, bytes]:
    """(envelope, nonce bytes) of a wire `{nonce, ciphertext}`, checked for shape only (no key needed)."""
    if not isinstance(sealed, dict) or not isinstance(sealed.get("nonce"), str) or not isinstance(
        sealed.get("ciphertext"), str
    ):
        raise RecordError("a sealed record is an object with nonce and ciphertext strings")
    try:
        nonce = b64_decode(sealed["nonce"])
        envelope = parse_scope(b64_decode(sealed["ciphertext"]))
    except (EncodingError, KeyringError) as exc:
        raise RecordError(f"sealed record is malformed: {exc}") from None
    if envelope is None or len(nonce) != 24:
        raise RecordError("sealed record is not a CMS1 envelope with a 24-byte nonce")
    if envelope.scope != RECORD_SCOPE:
        raise RecordError(f"sealed record is in scope {envelope.scope}, not {RECORD_SCOPE}")
    return envelope, nonce


def open_record(
    envelope: ScopeEnvelope, nonce: bytes, *, kind: str, name: str | None, mesh_id: str, key: bytes
) -> Any:
    """The record's value once the author's signature, the key and the binding all check out."""
    try:
        text = open_scope(envelope, mesh_id=mesh_id, nonce=nonce, key=key)
        record = json.loads(text)
    except KeyringError as exc:
        raise RecordError(str(exc)) from None
    except ValueError:
        raise RecordError("sealed record does not hold JSON") from None
    if not isinstance(record, dict) or record.get("kind") != kind or record.get("name") != name:
        raise RecordError(f"sealed record was written as another {kind} (moved by the server?)")
    return record.get("value")


# --- blind search tokens ------------------------------------------------------------------------------------


def search_key(scope_key: bytes) -> bytes:
    """A key for search tokens only, derived from a scope key: tokens never reveal the scope key itself."""
    return nacl.hash.blake2b(_SEARCH_LABEL, key=scope_key, digest_size=32, encoder=nacl.encoding.RawEncoder)


def words(text: str) -> list[str]:
    """Normalised words: Unicode NFKC, case-folded, accents kept, stop words and one-letter words dropped;
    a plural `s` is folded onto its singular so `deploys` finds `deploy`."""
    found = []
    for word in _WORD.findall(unicodedata.normalize("NFKC", text).casefold()):
        if len(word) < 2 or word in STOP_WORDS:
            continue
        if len(word) > 3 and word.endswith("s") and not word.endswith("ss"):
            word = word[:-1]
        found.append(word)
    return found


def blind_tokens(text: str, key: bytes) -> list[str]:
    """The distinct tokens of a text's words (at most MAX_TOKENS_PER_TEXT, first words first)."""
    tokens: dict[str, None] = {}
    for word in words(text):
        tokens.setdefault(blind_token(word, key), None)
        if len(tokens) >= MAX_TOKENS_PER_TEXT:
            break
    return list(tokens)


def blind_token(word: str, key: bytes) -> str:
    return nacl.hash.blake2b(word.encode("utf-8"), key=key, digest_size=TOKEN_BYTES).decode("ascii")


def is_token(text: object) -> bool:
    return isinstance(text, str) and bool(TOKEN_PATTERN.fullmatch(text))
