"""Ed25519 identities, signatures and the NaCl boxes both sides use (protocol.md §8, client.md §5)."""

from __future__ import annotations

from dataclasses import dataclass

import nacl.bindings
import nacl.exceptions
import nacl.public
import nacl.secret
import nacl.signing
import nacl.utils

from protocol.encoding import EncodingError, b64_decode, b64_encode, hex_decode

NONCE_BYTES = nacl.public.Box.NONCE_SIZE  # 24


class CryptoError(ValueError):
    """A signature, key or box did not check out."""


@dataclass(frozen=True)
class SigningKeypair:
    """An ed25519 keypair in the wire's encodings: 64-hex public key, 128-hex libsodium secret key."""

    public_hex: str
    secret_hex: str

    @classmethod
    def generate(cls) -> SigningKeypair:
        return cls.from_signing_key(nacl.signing.SigningKey.generate())

    @classmethod
    def from_signing_key(cls, key: nacl.signing.SigningKey) -> SigningKeypair:
        public = bytes(key.verify_key)
        return cls(public_hex=public.hex(), secret_hex=(bytes(key) + public).hex())

    @classmethod
    def from_secret_hex(cls, secret_hex: str) -> SigningKeypair:
        return cls.from_signing_key(signing_key_from_hex(secret_hex))

    def sign_hex(self, message: bytes) -> str:
        return sign_detached_hex(self.secret_hex, message)


def signing_key_from_hex(secret_hex: str) -> nacl.signing.SigningKey:
    """Accept the 128-hex libsodium form (seed ‖ public) or a bare 64-hex seed."""
    try:
        raw = bytes.fromhex(secret_hex)
    except (TypeError, ValueError) as exc:
        raise CryptoError("secret key is not hex") from exc
    if len(raw) not in (32, 64):
        raise CryptoError("secret key must be 32 or 64 bytes")
    return nacl.signing.SigningKey(raw[:32])


def sign_detached_hex(secret_hex: str, message: bytes) -> str:
    return signing_key_from_hex(secret_hex).sign(message).signature.hex()


def verify_detached_hex(public_hex: str, message: bytes, signature_hex: str) -> bool:
    """True when `signature_hex` is a valid ed25519 signature of `message` by `public_hex`."""
    try:
        key = nacl.signing.VerifyKey(hex_decode(public_hex, 32))
        key.verify(message, hex_decode(signature_hex, 64))
        return True
    except (EncodingError, nacl.exceptions.BadSignatureError, nacl.exceptions.ValueError, ValueError):
        return False


def ed25519_pk_to_x25519(public_hex: str) -> bytes:
    try:
        return nacl.bindings.crypto_sign_ed25519_pk_to_curve25519(hex_decode(public_hex, 32))
    except (EncodingError, nacl.exceptions.RuntimeError, ValueError) as exc:
        raise CryptoError("not a valid ed25519 public key") from exc


def ed25519_sk_to_x25519(secret_hex: str) -> bytes:
    key = signing_key_from_hex(secret_hex)
    return nacl.bindings.crypto_sign_ed25519_sk_to_curve25519(bytes(key) + bytes(key.verify_key))


def box_encrypt(plaintext: bytes, *, recipient_ed25519_hex: str, sender_secret_hex: str) -> tuple[str, str]:
    """crypto_box_easy between x25519 keys converted from ed25519 keys. Returns (nonce_b64, ciphertext_b64)."""
    nonce = nacl.utils.random(NONCE_BYTES)
    box = nacl.public.Box(
        nacl.public.PrivateKey(ed25519_sk_to_x25519(sender_secret_hex)),
        nacl.public.PublicKey(ed25519_pk_to_x25519(recipient_ed25519_hex)),
    )
    ciphertext = box.encrypt(plaintext, nonce).ciphertext
    return b64_encode(nonce), b64_encode(ciphertext)


def box_decrypt(nonce_b64: str, ciphertext_b64: str, *, sender_ed25519_hex: str, recipient_secret_hex: str) -> bytes:
    try:
        box = nacl.public.Box(
            nacl.public.PrivateKey(ed25519_sk_to_x25519(recipient_secret_hex)),
            nacl.public.PublicKey(ed25519_pk_to_x25519(sender_ed25519_hex)),
        )
        return box.decrypt(b64_decode(ciphertext_b64), b64_decode(nonce_b64))
    except (EncodingError, nacl.exceptions.CryptoError, ValueError) as exc:
        raise CryptoError("message does not decrypt") from exc


def seal(plaintext: bytes, recipient_x25519: bytes) -> bytes:
    """crypto_box_seal: anonymous sender, only the holder of the x25519 secret opens it."""
    try:
        return nacl.public.SealedBox(nacl.public.PublicKey(recipient_x25519)).encrypt(plaintext)
    except (nacl.exceptions.CryptoError, nacl.exceptions.TypeError, ValueError) as exc:
        raise CryptoError("cannot seal to that key") from exc


def seal_open(sealed: bytes, recipient: nacl.public.PrivateKey) -> bytes:
    try:
        return nacl.public.SealedBox(recipient).decrypt(sealed)
    except (nacl.exceptions.CryptoError, ValueError) as exc:
        raise CryptoError("sealed box does not open") from exc


def random_key() -> bytes:
    return nacl.utils.random(nacl.secret.SecretBox.KEY_SIZE)
