"""The mesh keyring's formats (docs/encryption.md "The mesh keyring"): scopes, key wraps (`CMK1`) and scope
messages (`CMS1`). Pure functions of bytes and keys; the broker checks wraps with them before storing, the peer
makes and opens them. Nothing here talks to anyone.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass

import nacl.bindings
import nacl.encoding
import nacl.exceptions
import nacl.hash
import nacl.secret
import nacl.utils

from protocol.crypto import (
    NONCE_BYTES,
    CryptoError,
    SigningKeypair,
    ed25519_pk_to_x25519,
    ed25519_sk_to_x25519,
    verify_detached_hex,
)
from protocol.encoding import HEX64, EncodingError, b64_decode, b64_encode

WRAP_MAGIC = b"CMK1"
SCOPE_MAGIC = b"CMS1"
KEY_BYTES = nacl.secret.SecretBox.KEY_SIZE  # 32
CONTEXT_BYTES = 32
SIGNATURE_BYTES = 64
WRAP_BOX_BYTES = KEY_BYTES + CONTEXT_BYTES + nacl.secret.SecretBox.MACBYTES  # 80
WRAP_SIGNED_BYTES = 4 + 4 + 32 + 32 + NONCE_BYTES + WRAP_BOX_BYTES  # 176
WRAP_BYTES = WRAP_SIGNED_BYTES + SIGNATURE_BYTES  # 240
MAX_EPOCH = 0xFFFFFFFF
MAX_SCOPE_CHARS = 200
MESH_SCOPE = "mesh"
# `mesh`, `topic:<id>`, `group:<name>`: printable ASCII without spaces, so it fits the envelope's one-byte length.
SCOPE_PATTERN = re.compile(r"^(mesh|topic:[0-9A-Za-z_-]{1,64}|group:[!-~]{1,100})$")
_CONTEXT_LABEL = b"claudemesh/scope-key/v1"


class KeyringError(ValueError):
    """A wrap or scope envelope is malformed, forged or not for this scope and epoch."""


# --- scopes ---------------------------------------------------------------------------------------------------


def is_scope(text: object) -> bool:
    return isinstance(text, str) and len(text) <= MAX_SCOPE_CHARS and bool(SCOPE_PATTERN.fullmatch(text))


def topic_scope(topic_id: str) -> str:
    return f"topic:{topic_id}"


def group_scope(name: str) -> str:
    return f"group:{name}"


def scope_for_target(target_spec: str) -> str | None:
    """The scope a multicast or topic target is encrypted in; None for a direct target."""
    if target_spec in ("*", "@all"):
        return MESH_SCOPE
    if target_spec.startswith("#") and len(target_spec) > 1:
        return topic_scope(target_spec[1:])
    if target_spec.startswith("@") and len(target_spec) > 1:
        return group_scope(target_spec[1:])
    return None


def scope_context(*, mesh_id: str, scope: str, epoch: int) -> bytes:
    """What binds a key to one mesh, scope and epoch (inside every wrap, under every signature)."""
    material = b"\x00".join([_CONTEXT_LABEL, mesh_id.encode("utf-8"), scope.encode("utf-8"), struct.pack(">I", epoch)])
    return nacl.hash.blake2b(material, digest_size=CONTEXT_BYTES, encoder=nacl.encoding.RawEncoder)


def new_scope_key() -> bytes:
    return nacl.utils.random(KEY_BYTES)


def check_epoch(epoch: object) -> int:
    if not isinstance(epoch, int) or isinstance(epoch, bool) or not 1 <= epoch <= MAX_EPOCH:
        raise KeyringError("epoch must be an integer from 1 to 4294967295")
    return epoch


# --- wraps (CMK1) -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Wrap:
    epoch: int
    recipient: str  # ed25519 member pubkey hex
    granter: str  # ed25519 member pubkey hex
    nonce: bytes
    box: bytes
    signature: bytes
    signed: bytes  # bytes 0..175


def wrap_key(key: bytes, *, mesh_id: str, scope: str, epoch: int, recipient_pubkey: str, granter: SigningKeypair) -> str:
    """One member's copy of a scope key: sealed to it, authenticated and signed by the granter."""
    check_epoch(epoch)
    if len(key) != KEY_BYTES:
        raise KeyringError("a scope key is 32 bytes")
    context = scope_context(mesh_id=mesh_id, scope=scope, epoch=epoch)
    nonce = nacl.utils.random(NONCE_BYTES)
    box = nacl.bindings.crypto_box(
        key + context, nonce, ed25519_pk_to_x25519(recipient_pubkey), ed25519_sk_to_x25519(granter.secret_hex)
    )
    signed = WRAP_MAGIC + struct.pack(">I", epoch) + bytes.fromhex(recipient_pubkey) + bytes.fromhex(granter.public_hex)
    signed += nonce + box
    signature = bytes.fromhex(granter.sign_hex(signed + context))
    return b64_encode(signed + signature)


def parse_wrap(text: object) -> Wrap:
    """The fields of a wrap, checked for shape only (no keys needed)."""
    try:
        raw = b64_decode(text)  # type: ignore[arg-type]
    except EncodingError as exc:
        raise KeyringError("key wrap is not base64") from exc
    if len(raw) != WRAP_BYTES or not raw.startswith(WRAP_MAGIC):
        raise KeyringError(f"key wrap must be a {WRAP_BYTES}-byte CMK1 blob")
    (epoch,) = struct.unpack(">I", raw[4:8])
    return Wrap(
        epoch=epoch,
        recipient=raw[8:40].hex(),
        granter=raw[40:72].hex(),
        nonce=raw[72:96],
        box=raw[96:WRAP_SIGNED_BYTES],
        signature=raw[WRAP_SIGNED_BYTES:],
        signed=raw[:WRAP_SIGNED_BYTES],
    )


def check_wrap(text: object, *, mesh_id: str, scope: str, epoch: int, recipient_pubkey: str, granter_pubkey: str) -> Wrap:
    """What anyone can verify without opening it: shape, epoch, who it is for, who granted it, the signature."""
    wrap = parse_wrap(text)
    if wrap.epoch != epoch:
        raise KeyringError(f"key wrap is for epoch {wrap.epoch}, not {epoch}")
    if wrap.recipient != recipient_pubkey.lower():
        raise KeyringError("key wrap is for another member")
    if wrap.granter != granter_pubkey.lower():
        raise KeyringError("key wrap was granted by another member")
    context = scope_context(mesh_id=mesh_id, scope=scope, epoch=epoch)
    if not verify_detached_hex(wrap.granter, wrap.signed + context, wrap.signature.hex()):
        raise KeyringError("key wrap signature does not verify for this mesh, scope and epoch")
    return wrap


def open_wrap(text: object, *, mesh_id: str, scope: str, epoch: int, recipient: SigningKeypair) -> tuple[bytes, str]:
    """(key, granter pubkey) of a wrap made for `recipient`. Raises KeyringError for anything forged, altered or
    moved from another mesh, scope or epoch."""
    wrap = parse_wrap(text)
    wrap = check_wrap(text, mesh_id=mesh_id, scope=scope, epoch=epoch, recipient_pubkey=recipient.public_hex,
                      granter_pubkey=wrap.granter)
    try:
        inner = nacl.bindings.crypto_box_open(
            wrap.box, wrap.nonce, ed25519_pk_to_x25519(wrap.granter), ed25519_sk_to_x25519(recipient.secret_hex)
        )
    except (nacl.exceptions.CryptoError, CryptoError, ValueError) as exc:
        raise KeyringError("key wrap does not open with this member's key") from exc
    if inner[KEY_BYTES:] != scope_context(mesh_id=mesh_id, scope=scope, epoch=epoch):
        raise KeyringError("key wrap is bound to another mesh, scope or epoch")
    return inner[:KEY_BYTES], wrap.granter


# --- scope messages (CMS1) --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ScopeEnvelope:
    epoch: int
    author: str  # ed25519 member pubkey hex
    scope: str
    body: bytes
    signature: bytes
    signed: bytes


def seal_scope(text: str, *, mesh_id: str, scope: str, epoch: int, key: bytes, author: SigningKeypair) -> tuple[str, str]:
    """(nonce, ciphertext) for a `send` frame: the text under the epoch's key, signed by the author's member key."""
    check_epoch(epoch)
    if not is_scope(scope):
        raise KeyringError(f"not a scope: {scope!r}")
    nonce = nacl.utils.random(NONCE_BYTES)
    body = nacl.secret.SecretBox(key).encrypt(text.encode("utf-8"), nonce).ciphertext
    scope_bytes = scope.encode("ascii")
    signed = SCOPE_MAGIC + struct.pack(">I", epoch) + bytes.fromhex(author.public_hex)
    signed += bytes([len(scope_bytes)]) + scope_bytes + body
    context = scope_context(mesh_id=mesh_id, scope=scope, epoch=epoch)
    signature = bytes.fromhex(author.sign_hex(SCOPE_MAGIC + context + nonce + signed))
    return b64_encode(nonce), b64_encode(signed + signature)


def parse_scope(raw: bytes) -> ScopeEnvelope | None:
    """None when `raw` is not a scope envelope at all; KeyringError when it claims to be one but is broken."""
    if not raw.startswith(SCOPE_MAGIC):
        return None
    header = 4 + 4 + 32 + 1
    if len(raw) < header:
        raise KeyringError("scope envelope truncated")
    length = raw[header - 1]
    body_start = header + length
    if len(raw) < body_start + nacl.secret.SecretBox.MACBYTES + SIGNATURE_BYTES:
        raise KeyringError("scope envelope truncated")
    try:
        scope = raw[header:body_start].decode("ascii")
    except UnicodeDecodeError as exc:
        raise KeyringError("scope envelope names no scope") from exc
    if not is_scope(scope):
        raise KeyringError("scope envelope names no scope")
    (epoch,) = struct.unpack(">I", raw[4:8])
    return ScopeEnvelope(
        epoch=epoch,
        author=raw[8:40].hex(),
        scope=scope,
        body=raw[body_start:-SIGNATURE_BYTES],
        signature=raw[-SIGNATURE_BYTES:],
        signed=raw[:-SIGNATURE_BYTES],
    )


def scope_signature_ok(envelope: ScopeEnvelope, *, mesh_id: str, nonce: bytes) -> bool:
    """The author's signature over this mesh, scope, epoch and nonce: anyone can check it without the key."""
    context = scope_context(mesh_id=mesh_id, scope=envelope.scope, epoch=envelope.epoch)
    return bool(HEX64.fullmatch(envelope.author)) and verify_detached_hex(
        envelope.author, SCOPE_MAGIC + context + nonce + envelope.signed, envelope.signature.hex()
    )


def open_scope(envelope: ScopeEnvelope, *, mesh_id: str, nonce: bytes, key: bytes) -> str:
    """The text, once the author's signature and the key's tag both check out."""
    if not scope_signature_ok(envelope, mesh_id=mesh_id, nonce=nonce):
        raise KeyringError("scope message signature does not verify (forged, altered or moved)")
    try:
        raw = nacl.secret.SecretBox(key).decrypt(envelope.body, nonce)
    except (nacl.exceptions.CryptoError, ValueError) as exc:
        raise KeyringError("scope message does not open with this epoch's key") from exc
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise KeyringError("scope message is not UTF-8") from exc
