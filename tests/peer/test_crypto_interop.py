"""Envelopes against the spec's algorithm, built by hand with raw PyNaCl (client.md §5.2–5.4, docs/encryption.md)."""

from __future__ import annotations

import base64
import struct

import nacl.bindings as sodium
import nacl.secret
import nacl.signing
import nacl.utils
import pytest

from protocol.envelope import GROUP_MAGIC, open_push, seal_direct, seal_group, seal_plaintext


class Identity:
    """An ed25519 identity held the way the original client holds it: libsodium 64-byte secret, hex."""

    def __init__(self):
        key = nacl.signing.SigningKey.generate()
        self.pk = bytes(key.verify_key)
        self.sk64 = bytes(key) + self.pk
        self.pubkey = self.pk.hex()
        self.secret_hex = self.sk64.hex()

    @property
    def x_pk(self) -> bytes:
        return sodium.crypto_sign_ed25519_pk_to_curve25519(self.pk)

    @property
    def x_sk(self) -> bytes:
        return sodium.crypto_sign_ed25519_sk_to_curve25519(self.sk64)

    @property
    def keys(self) -> list[tuple[str, str]]:
        return [(self.pubkey, self.secret_hex)]


def reference_dm(text: str, sender: Identity, recipient: Identity) -> tuple[str, str]:
    """client.md §5.2 step by step: crypto_box_easy, 24-byte nonce, standard padded base64."""
    nonce = nacl.utils.random(24)
    ct = sodium.crypto_box(text.encode("utf-8"), nonce, recipient.x_pk, sender.x_sk)
    assert len(ct) == len(text.encode()) + 16
    return base64.b64encode(nonce).decode(), base64.b64encode(ct).decode()


def test_reference_dm_opens_with_our_code():
    alice, bob = Identity(), Identity()
    nonce, ct = reference_dm("héllo bob 👋", alice, bob)
    assert len(nonce) == 32  # 24 bytes, standard alphabet
    opened = open_push(sender_pubkey=alice.pubkey, nonce=nonce, ciphertext=ct, own_keys=bob.keys)
    assert (opened.kind, opened.plaintext, opened.encrypted) == ("direct", "héllo bob 👋", True)


def test_our_dm_opens_with_reference_algorithm():
    alice, bob = Identity(), Identity()
    envelope = seal_direct("ping", recipient_pubkey=bob.pubkey, sender_secret_hex=alice.secret_hex)
    nonce, ct = base64.b64decode(envelope.nonce, validate=True), base64.b64decode(envelope.ciphertext, validate=True)
    assert len(nonce) == 24
    assert sodium.crypto_box_open(ct, nonce, alice.x_pk, bob.x_sk) == b"ping"


def test_dm_falls_back_to_member_key_after_session_key():
    alice, bob_session, bob_member = Identity(), Identity(), Identity()
    nonce, ct = reference_dm("to member key", alice, bob_member)
    opened = open_push(sender_pubkey=alice.pubkey, nonce=nonce, ciphertext=ct,
                       own_keys=bob_session.keys + bob_member.keys)
    assert opened.plaintext == "to member key"


def test_tampered_dm_is_shown_as_undecryptable_not_dropped():
    alice, bob = Identity(), Identity()
    nonce, ct = reference_dm("secret", alice, bob)
    raw = bytearray(base64.b64decode(ct))
    raw[-1] ^= 1
    opened = open_push(sender_pubkey=alice.pubkey, nonce=nonce, ciphertext=base64.b64encode(bytes(raw)).decode(),
                       own_keys=bob.keys)
    assert opened.plaintext is None and opened.failure and opened.kind == "direct"


def test_dm_for_someone_else_is_undecryptable():
    alice, bob, eve = Identity(), Identity(), Identity()
    nonce, ct = reference_dm("not for eve", alice, bob)
    assert open_push(sender_pubkey=alice.pubkey, nonce=nonce, ciphertext=ct, own_keys=eve.keys).plaintext is None


def test_reference_plaintext_broadcast_still_displays():
    """The original client's `*` / `@group` shape: random nonce, base64 of UTF-8, sender key set (§5.3)."""
    alice, bob = Identity(), Identity()
    nonce = base64.b64encode(nacl.utils.random(24)).decode()
    ct = base64.b64encode(b"hello everyone\nline two").decode()
    opened = open_push(sender_pubkey=alice.pubkey, nonce=nonce, ciphertext=ct, own_keys=bob.keys)
    assert (opened.kind, opened.plaintext, opened.encrypted) == ("broadcast", "hello everyone\nline two", False)
    envelope = seal_plaintext("reminder")
    assert open_push(sender_pubkey="", nonce="", ciphertext=envelope.ciphertext, own_keys=bob.keys).plaintext == "reminder"


def test_system_push_is_not_decrypted():
    opened = open_push(sender_pubkey="system", nonce="", ciphertext="", own_keys=[], subtype="system")
    assert opened.kind == "system"


def test_group_round_trip_for_every_recipient_and_not_others():
    alice, bob, carol, eve = Identity(), Identity(), Identity(), Identity()
    envelope = seal_group("team update", recipient_pubkeys=[bob.pubkey, carol.pubkey, alice.pubkey],
                          sender_secret_hex=alice.secret_hex)
    for reader in (bob, carol, alice):
        opened = open_push(sender_pubkey=alice.pubkey, nonce=envelope.nonce, ciphertext=envelope.ciphertext,
                           own_keys=reader.keys)
        assert (opened.kind, opened.plaintext, opened.encrypted) == ("group", "team update", True)
    outsider = open_push(sender_pubkey=alice.pubkey, nonce=envelope.nonce, ciphertext=envelope.ciphertext,
                         own_keys=eve.keys)
    assert outsider.plaintext is None and "not encrypted to this member" in outsider.failure
    assert b"team update" not in base64.b64decode(envelope.ciphertext)


def test_group_envelope_layout_matches_docs():
    """docs/encryption.md: MAGIC ‖ u16 count ‖ count × (pk32 ‖ nonce24 ‖ box48) ‖ secretbox(body, frame nonce)."""
    alice, bob = Identity(), Identity()
    envelope = seal_group("x", recipient_pubkeys=[bob.pubkey], sender_secret_hex=alice.secret_hex)
    raw = base64.b64decode(envelope.ciphertext)
    assert raw[:4] == GROUP_MAGIC and struct.unpack(">H", raw[4:6]) == (1,)
    entry = raw[6 : 6 + 104]
    assert entry[:32] == bob.pk
    key = sodium.crypto_box_open(entry[56:], entry[32:56], alice.x_pk, bob.x_sk)
    body = nacl.secret.SecretBox(key).decrypt(raw[6 + 104 :], base64.b64decode(envelope.nonce))
    assert body == b"x"


@pytest.mark.parametrize("where", ["body", "wrap", "nonce"])
def test_group_tampering_is_detected(where):
    alice, bob = Identity(), Identity()
    envelope = seal_group("integrity", recipient_pubkeys=[bob.pubkey], sender_secret_hex=alice.secret_hex)
    raw = bytearray(base64.b64decode(envelope.ciphertext))
    nonce = bytearray(base64.b64decode(envelope.nonce))
    if where == "body":
        raw[-1] ^= 1
    elif where == "wrap":
        raw[6 + 60] ^= 1
    else:
        nonce[0] ^= 1
    opened = open_push(sender_pubkey=alice.pubkey, nonce=base64.b64encode(bytes(nonce)).decode(),
                       ciphertext=base64.b64encode(bytes(raw)).decode(), own_keys=bob.keys)
    assert opened.plaintext is None and opened.failure


def test_group_from_a_different_sender_key_fails():
    """A broker relabelling the sender cannot make the wrap open."""
    alice, bob, mallory = Identity(), Identity(), Identity()
    envelope = seal_group("hi", recipient_pubkeys=[bob.pubkey], sender_secret_hex=alice.secret_hex)
    opened = open_push(sender_pubkey=mallory.pubkey, nonce=envelope.nonce, ciphertext=envelope.ciphertext,
                       own_keys=bob.keys)
    assert opened.plaintext is None


def test_truncated_group_envelope_is_undecryptable():
    alice, bob = Identity(), Identity()
    envelope = seal_group("hi", recipient_pubkeys=[bob.pubkey], sender_secret_hex=alice.secret_hex)
    raw = base64.b64decode(envelope.ciphertext)[:40]
    opened = open_push(sender_pubkey=alice.pubkey, nonce=envelope.nonce, ciphertext=base64.b64encode(raw).decode(),
                       own_keys=bob.keys)
    assert opened.plaintext is None and "truncated" in opened.failure
