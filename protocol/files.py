"""End-to-end encrypted files (docs/encryption.md "Files"): a fresh 32-byte key per file, the bytes in
XChaCha20-Poly1305 secretstream records of 64 KiB, so neither side ever holds a whole file in memory.

Layout: `CMF1` ‖ the 24-byte stream header ‖ records, each a 4-byte big-endian length and a secretstream message.
The first record is the metadata (JSON `{name, size, mime}`), the last is tagged FINAL: a reader that reaches the
end of the bytes without it knows the file was cut short. Every record is bound to the mesh (additional data), so
bytes moved between meshes do not open. The file key travels wrapped for each recipient like a message text
(`wrap_text` / `unwrap_text`): the server stores the ciphertext and the wraps, never the key.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Iterator
from dataclasses import dataclass

import nacl.bindings as sodium
import nacl.exceptions

from protocol.crypto import random_key

MAGIC = b"CMF1"
CHUNK_BYTES = 64 * 1024
HEADER_BYTES = sodium.crypto_secretstream_xchacha20poly1305_HEADERBYTES  # 24
ABYTES = sodium.crypto_secretstream_xchacha20poly1305_ABYTES  # 17
LENGTH_BYTES = 4
MAX_META_BYTES = 4096
TAG_MESSAGE = sodium.crypto_secretstream_xchacha20poly1305_TAG_MESSAGE
TAG_FINAL = sodium.crypto_secretstream_xchacha20poly1305_TAG_FINAL
SEALED_KEY_PREFIX = "cmf1:"


class FileCryptoError(ValueError):
    """The bytes are not a file of this mesh sealed with this key (tampered, cut short, or not ours)."""


@dataclass(frozen=True)
class FileMeta:
    name: str
    size: int  # plaintext bytes
    mime: str = "application/octet-stream"

    def encoded(self) -> bytes:
        return json.dumps({"name": self.name, "size": self.size, "mime": self.mime}, ensure_ascii=False).encode()


def new_file_key() -> bytes:
    return random_key()


def _ad(mesh_id: str) -> bytes:
    return b"claudemesh/file/v1|" + mesh_id.encode("utf-8")


def sealed_size(meta: FileMeta) -> int:
    """The exact ciphertext length of a file: what the upload declares before it streams."""
    chunks = -(-meta.size // CHUNK_BYTES)  # data records; the FINAL record is empty
    records = 1 + chunks + 1
    return len(MAGIC) + HEADER_BYTES + records * (LENGTH_BYTES + ABYTES) + len(meta.encoded()) + meta.size


def max_sealed_size(plain_limit: int) -> int:
    """The largest ciphertext a file of at most `plain_limit` bytes can have (the server's cap)."""
    chunks = -(-plain_limit // CHUNK_BYTES)
    return len(MAGIC) + HEADER_BYTES + (chunks + 2) * (LENGTH_BYTES + ABYTES) + MAX_META_BYTES + plain_limit


def _record(state, data: bytes, tag: int, ad: bytes) -> bytes:
    sealed = sodium.crypto_secretstream_xchacha20poly1305_push(state, data, ad, tag)
    return struct.pack(">I", len(sealed)) + sealed


def seal_stream(chunks: Iterator[bytes], *, meta: FileMeta, key: bytes, mesh_id: str) -> Iterator[bytes]:
    """The sealed file, piece by piece: `chunks` are the plaintext (any sizes; re-cut to 64 KiB records)."""
    if len(meta.encoded()) > MAX_META_BYTES:
        raise FileCryptoError("file name too long")
    ad = _ad(mesh_id)
    state = sodium.crypto_secretstream_xchacha20poly1305_state()
    header = sodium.crypto_secretstream_xchacha20poly1305_init_push(state, key)
    yield MAGIC + header + _record(state, meta.encoded(), TAG_MESSAGE, ad)
    pending = b""
    total = 0
    for chunk in chunks:
        pending += chunk
        total += len(chunk)
        while len(pending) >= CHUNK_BYTES:
            yield _record(state, pending[:CHUNK_BYTES], TAG_MESSAGE, ad)
            pending = pending[CHUNK_BYTES:]
    if total != meta.size:
        raise FileCryptoError(f"the file changed while it was read ({total} bytes, expected {meta.size})")
    if pending:
        yield _record(state, pending, TAG_MESSAGE, ad)
    yield _record(state, b"", TAG_FINAL, ad)


class StreamOpener:
    """Feed the sealed bytes as they arrive (`feed`), get plaintext back; `meta` is known after the first record.
    `finish()` raises unless the FINAL record was seen and nothing follows it."""

    def __init__(self, *, key: bytes, mesh_id: str):
        self._key = key
        self._ad = _ad(mesh_id)
        self._buffer = bytearray()
        self._state = None
        self._done = False
        self.meta: FileMeta | None = None
        self.plain_bytes = 0

    def feed(self, data: bytes) -> bytes:
        self._buffer += data
        out = bytearray()
        if self._state is None:
            if len(self._buffer) < len(MAGIC) + HEADER_BYTES:
                return b""
            if bytes(self._buffer[:4]) != MAGIC:
                raise FileCryptoError("not a claudemesh file (bad magic)")
            self._state = sodium.crypto_secretstream_xchacha20poly1305_state()
            header = bytes(self._buffer[4:4 + HEADER_BYTES])
            try:
                sodium.crypto_secretstream_xchacha20poly1305_init_pull(self._state, header, self._key)
            except (nacl.exceptions.CryptoError, ValueError) as exc:
                raise FileCryptoError("the file header does not open with this key") from exc
            del self._buffer[:4 + HEADER_BYTES]
        while len(self._buffer) >= LENGTH_BYTES:
            (length,) = struct.unpack(">I", self._buffer[:LENGTH_BYTES])
            if length < ABYTES or length > CHUNK_BYTES + ABYTES + MAX_META_BYTES:
                raise FileCryptoError("a record has an impossible length")
            if len(self._buffer) < LENGTH_BYTES + length:
                break
            if self._done:
                raise FileCryptoError("bytes follow the end of the file")
            record = bytes(self._buffer[LENGTH_BYTES:LENGTH_BYTES + length])
            del self._buffer[:LENGTH_BYTES + length]
            try:
                plain, tag = sodium.crypto_secretstream_xchacha20poly1305_pull(self._state, record, self._ad)
            except (nacl.exceptions.CryptoError, ValueError) as exc:
                raise FileCryptoError("a record does not open: the file was tampered with or belongs elsewhere") from exc
            if self.meta is None:
                self.meta = _meta(plain)
                continue
            if tag == TAG_FINAL:
                self._done = True
            out += plain
            self.plain_bytes += len(plain)
        if self._done and self._buffer:
            raise FileCryptoError("bytes follow the end of the file")
        return bytes(out)

    def finish(self) -> FileMeta:
        if not self._done or self.meta is None:
            raise FileCryptoError("the file ends early (no final record): it was cut short")
        if self.plain_bytes != self.meta.size:
            raise FileCryptoError("the file's size does not match its header")
        return self.meta


def _meta(plain: bytes) -> FileMeta:
    try:
        data = json.loads(plain)
        return FileMeta(name=str(data["name"]), size=int(data["size"]), mime=str(data.get("mime") or "application/octet-stream"))
    except (ValueError, KeyError, TypeError) as exc:
        raise FileCryptoError("the file's header is unreadable") from exc


def sealed_key_text(nonce: str, ciphertext: str) -> str:
    """A wrapped file key as one string: the wrap is a message envelope (direct, group or keyring) whose text is
    the key in base64."""
    return f"{SEALED_KEY_PREFIX}{nonce}:{ciphertext}"


def parse_sealed_key(text: object) -> tuple[str, str] | None:
    """(nonce, ciphertext) of a wrapped key, or None when `text` is not one."""
    if not isinstance(text, str) or not text.startswith(SEALED_KEY_PREFIX):
        return None
    nonce, sep, ciphertext = text[len(SEALED_KEY_PREFIX):].partition(":")
    if not sep or not ciphertext:
        return None
    return nonce, ciphertext
