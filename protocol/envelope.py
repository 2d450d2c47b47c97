"""Message envelopes: what goes into a `send` frame's `nonce`/`ciphertext` and how a receiver reads a `push`.

Three shapes share the two opaque wire fields (see docs/encryption.md):

- **direct** (target = one 64-hex pubkey): `crypto_box_easy` between x25519 keys converted from the ed25519
  keys, byte-compatible with the original client (client.md §5.2).
- **group** (`*`, `@all`, `@group`): one random 32-byte message key; the text is sealed with
  `crypto_secretbox` under the frame's nonce, and the key is wrapped with `crypto_box` for every recipient
  member key. `ciphertext` = standard base64 of `MAGIC ‖ count ‖ wraps ‖ body`.
- **plaintext** (original clients' broadcasts, reminders): standard base64 of UTF-8 text (client.md §5.3).

The broker only ever stores and forwards these strings, so none of this is visible to it.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import nacl.bindings
import nacl.exceptions
import nacl.secret
import nacl.utils

from protocol.crypto import (
    NONCE_BYTES,
    CryptoError,
    box_decrypt,
    box_encrypt,
    ed25519_pk_to_x25519,
    ed25519_sk_to_x25519,
)
from protocol.encoding import HEX64, EncodingError, b64_decode, b64_encode, hex_decode

GROUP_MAGIC = b"CMG1"
KEY_BYTES = nacl.secret.SecretBox.KEY_SIZE  # 32
PUBKEY_BYTES = 32
WRAPPED_KEY_BYTES = KEY_BYTES + nacl.secret.SecretBox.MACBYTES  # 48: crypto_box adds the same 16-byte tag
WRAP_ENTRY_BYTES = PUBKEY_BYTES + NONCE_BYTES + WRAPPED_KEY_BYTES  # 104
MAX_RECIPIENTS = 0xFFFF
# Plaintext longer than this is cut on display (client.md §5.4 step 6).
MAX_DISPLAY_CHARS = 1_000_000


class EnvelopeError(ValueError):
    """An envelope is malformed or cannot be built."""


@dataclass(frozen=True)
class WireEnvelope:
    """The two opaque strings a `send` frame carries."""

    nonce: str
    ciphertext: str


@dataclass(frozen=True)
class OpenedMessage:
    """What a receiver made of a push. `plaintext` is None when the message could not be read."""

    kind: str  # "direct" | "group" | "broadcast" | "system" | "webhook" | "unknown"
    plaintext: str | None
    encrypted: bool  # True when the bytes were end-to-end encrypted (direct or group)
    failure: str | None = None  # why plaintext is None


# --- direct -----------------------------------------------------------------------------------------------


def seal_direct(text: str, *, recipient_pubkey: str, sender_secret_hex: str) -> WireEnvelope:
    nonce, ciphertext = box_encrypt(
        text.encode("utf-8"), recipient_ed25519_hex=recipient_pubkey.lower(), sender_secret_hex=sender_secret_hex
    )
    return WireEnvelope(nonce=nonce, ciphertext=ciphertext)


def open_direct(envelope: WireEnvelope, *, sender_pubkey: str, own_secrets: list[str]) -> str | None:
    """Try each own secret in order (session first, then member: client.md §5.4). None when none opens it."""
    for secret in own_secrets:
        try:
            raw = box_decrypt(envelope.nonce, envelope.ciphertext, sender_ed25519_hex=sender_pubkey, recipient_secret_hex=secret)
        except CryptoError:
            continue
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            return None
    return None


# --- group ------------------------------------------------------------------------------------------------


def seal_group(text: str, *, recipient_pubkeys: list[str], sender_secret_hex: str) -> WireEnvelope:
    """Encrypt once, wrap the message key for every recipient ed25519 key (duplicates collapse)."""
    recipients = sorted({key.lower() for key in recipient_pubkeys})
    if not recipients:
        raise EnvelopeError("a group message needs at least one recipient key")
    if len(recipients) > MAX_RECIPIENTS:
        raise EnvelopeError("too many recipients for one envelope")
    for key in recipients:
        if not HEX64.fullmatch(key):
            raise EnvelopeError(f"recipient key {key[:16]!r} is not 64 hex chars")
    sender_x_secret = ed25519_sk_to_x25519(sender_secret_hex)
    message_key = nacl.utils.random(KEY_BYTES)
    body_nonce = nacl.utils.random(NONCE_BYTES)
    body = nacl.secret.SecretBox(message_key).encrypt(text.encode("utf-8"), body_nonce).ciphertext
    parts = [GROUP_MAGIC, struct.pack(">H", len(recipients))]
    for key in recipients:
        wrap_nonce = nacl.utils.random(NONCE_BYTES)
        wrapped = nacl.bindings.crypto_box(message_key, wrap_nonce, ed25519_pk_to_x25519(key), sender_x_secret)
        parts.extend([bytes.fromhex(key), wrap_nonce, wrapped])
    parts.append(body)
    return WireEnvelope(nonce=b64_encode(body_nonce), ciphertext=b64_encode(b"".join(parts)))


@dataclass(frozen=True)
class GroupEnvelope:
    wraps: dict[str, tuple[bytes, bytes]]  # recipient pubkey hex -> (wrap nonce, wrapped key)
    body: bytes


def parse_group(raw: bytes) -> GroupEnvelope | None:
    """None when `raw` is not a group envelope at all; EnvelopeError when it claims to be one but is broken."""
    if not raw.startswith(GROUP_MAGIC):
        return None
    header = len(GROUP_MAGIC) + 2
    if len(raw) < header:
        raise EnvelopeError("group envelope truncated")
    (count,) = struct.unpack(">H", raw[len(GROUP_MAGIC) : header])
    body_start = header + count * WRAP_ENTRY_BYTES
    if count == 0 or len(raw) < body_start + nacl.secret.SecretBox.MACBYTES:
        raise EnvelopeError("group envelope truncated")
    wraps: dict[str, tuple[bytes, bytes]] = {}
    for index in range(count):
        start = header + index * WRAP_ENTRY_BYTES
        entry = raw[start : start + WRAP_ENTRY_BYTES]
        pubkey = entry[:PUBKEY_BYTES].hex()
        wraps[pubkey] = (entry[PUBKEY_BYTES : PUBKEY_BYTES + NONCE_BYTES], entry[PUBKEY_BYTES + NONCE_BYTES :])
    return GroupEnvelope(wraps=wraps, body=raw[body_start:])


def open_group(
    group: GroupEnvelope, *, body_nonce: bytes, sender_pubkey: str, own_keys: list[tuple[str, str]]
) -> str:
    """Open with the first own (pubkey, secret) pair that has a wrap. Raises CryptoError otherwise."""
    try:
        sender_x = ed25519_pk_to_x25519(sender_pubkey)
    except CryptoError as exc:
        raise CryptoError("sender key is not an ed25519 key") from exc
    addressed = False
    for pubkey, secret in own_keys:
        wrap = group.wraps.get(pubkey.lower())
        if wrap is None:
            continue
        addressed = True
        try:
            message_key = nacl.bindings.crypto_box_open(wrap[1], wrap[0], sender_x, ed25519_sk_to_x25519(secret))
            raw = nacl.secret.SecretBox(message_key).decrypt(group.body, body_nonce)
        except (nacl.exceptions.CryptoError, ValueError):
            continue
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise CryptoError("group message is not UTF-8") from exc
    if not addressed:
        raise CryptoError("group message was not encrypted to this member's key")
    raise CryptoError("group message failed to decrypt (tampered or wrong sender)")


# --- plaintext (original clients) -----------------------------------------------------------------------


def seal_plaintext(text: str) -> WireEnvelope:
    """The reference client's broadcast shape: random nonce, base64 of the text. Not encrypted."""
    return WireEnvelope(nonce=b64_encode(nacl.utils.random(NONCE_BYTES)), ciphertext=b64_encode(text.encode("utf-8")))


def readable_plaintext(raw: bytes) -> str | None:
    """Strict UTF-8 with no control characters other than tab/newline/CR, else None (client.md §5.4 [PY])."""
    try:
        text = raw.decode("utf-8", errors="strict")
    except UnicodeDecodeError:
        return None
    if any((ord(ch) < 32 and ch not in "\t\n\r") or ord(ch) == 127 for ch in text):
        return None
    return text


# --- receive ----------------------------------------------------------------------------------------------


def open_push(
    *, sender_pubkey: str, nonce: str, ciphertext: str, own_keys: list[tuple[str, str]], subtype: str | None = None
) -> OpenedMessage:
    """The receive algorithm (client.md §5.4 [PY], plus group envelopes).

    `own_keys` are (ed25519 pubkey hex, secret hex) pairs, session key first, then member key. A message that
    cannot be read comes back with plaintext None and a reason: never dropped, never shown as garbage.
    """
    if subtype == "system" or sender_pubkey == "system":
        return OpenedMessage(kind="system", plaintext=None, encrypted=False)
    sender_is_key = bool(sender_pubkey) and bool(HEX64.fullmatch(sender_pubkey))
    if sender_is_key and nonce and ciphertext:
        text = open_direct(
            WireEnvelope(nonce, ciphertext), sender_pubkey=sender_pubkey.lower(), own_secrets=[s for _, s in own_keys]
        )
        if text is not None:
            return OpenedMessage(kind="direct", plaintext=_clip(text), encrypted=True)
    if not ciphertext:
        return OpenedMessage(kind="unknown", plaintext=None, encrypted=False, failure="empty message")
    try:
        raw = b64_decode(ciphertext)
    except EncodingError:
        return OpenedMessage(kind="unknown", plaintext=None, encrypted=False, failure="ciphertext is not base64")
    try:
        group = parse_group(raw)
    except EnvelopeError as exc:
        return OpenedMessage(kind="group", plaintext=None, encrypted=True, failure=str(exc))
    if group is not None:
        if not sender_is_key:
            return OpenedMessage(kind="group", plaintext=None, encrypted=True, failure="group message without a sender key")
        try:
            body_nonce = b64_decode(nonce)
            if len(body_nonce) != NONCE_BYTES:
                raise EncodingError("nonce must be 24 bytes")
            text = open_group(group, body_nonce=body_nonce, sender_pubkey=sender_pubkey.lower(), own_keys=own_keys)
        except (CryptoError, EncodingError) as exc:
            return OpenedMessage(kind="group", plaintext=None, encrypted=True, failure=str(exc))
        return OpenedMessage(kind="group", plaintext=_clip(text), encrypted=True)
    text = readable_plaintext(raw)
    if text is not None:
        return OpenedMessage(kind="broadcast", plaintext=_clip(text), encrypted=False)
    failure = "failed to decrypt (tampered or wrong keypair)"
    return OpenedMessage(kind="direct" if sender_is_key else "unknown", plaintext=None, encrypted=True, failure=failure)


def _clip(text: str) -> str:
    if len(text) > MAX_DISPLAY_CHARS:
        return text[:MAX_DISPLAY_CHARS] + "\n[truncated — message exceeded 1MB]"
    return text


def is_pubkey(text: str) -> bool:
    try:
        hex_decode(text, 32)
    except EncodingError:
        return False
    return True
