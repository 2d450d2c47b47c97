"""Encrypts a mesh's owner signing key and root key at rest (the reference kept both in plaintext).

Key: SHA-256 of MESH_KEY_ENCRYPTION_KEY (or SECRET_KEY when unset), used with NaCl's SecretBox.
"""

from __future__ import annotations

import hashlib

import nacl.exceptions
import nacl.secret
from django.conf import settings

from protocol.encoding import EncodingError, b64url_decode, b64url_encode


class KeyVaultError(RuntimeError):
    """A stored mesh secret cannot be opened (the encryption key changed?)."""


def _box() -> nacl.secret.SecretBox:
    material = settings.MESH_KEY_ENCRYPTION_KEY or settings.SECRET_KEY
    return nacl.secret.SecretBox(hashlib.sha256(b"claudemesh-mesh-keys|" + material.encode()).digest())


def seal_secret(plaintext: str) -> str:
    return b64url_encode(bytes(_box().encrypt(plaintext.encode("utf-8"))))


def open_secret(sealed: str) -> str:
    try:
        return _box().decrypt(b64url_decode(sealed)).decode("utf-8")
    except (EncodingError, nacl.exceptions.CryptoError, UnicodeDecodeError) as exc:
        raise KeyVaultError("mesh secret does not open with the configured MESH_KEY_ENCRYPTION_KEY") from exc
