"""Identifiers: 32 characters from [0-9A-Za-z] made with a CSPRNG (platform.md §1.1)."""

from __future__ import annotations

import re
import secrets
import string

ID_ALPHABET = string.digits + string.ascii_uppercase + string.ascii_lowercase
ID_LENGTH = 32
ID_PATTERN = re.compile(r"^[0-9A-Za-z]+$")
# Invite short codes avoid look-alike characters (protocol.md §1.6).
CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
CODE_LENGTH = 8


# Bytes below 248 (= 4 × 62) map evenly onto the alphabet; the rest are dropped, so every character is uniform.
_EVEN_BYTES = 256 - 256 % len(ID_ALPHABET)
_BYTE_TO_CHAR = bytes(ord(ID_ALPHABET[b % len(ID_ALPHABET)]) for b in range(256))
_UNEVEN_BYTES = bytes(range(_EVEN_BYTES, 256))


def new_id() -> str:
    """32 uniform characters from one CSPRNG draw, mapped in C (`bytes.translate`): ≈1 µs an id."""
    while True:
        chars = secrets.token_bytes(48).translate(_BYTE_TO_CHAR, _UNEVEN_BYTES)
        if len(chars) >= ID_LENGTH:  # 48 draws keep fewer than 32 with probability below 2**-70
            return chars[:ID_LENGTH].decode("ascii")


def new_code() -> str:
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


def is_id_fragment(text: object) -> bool:
    """True when `text` is made only of id characters (so it can never act as a pattern)."""
    return isinstance(text, str) and 0 < len(text) <= ID_LENGTH and bool(ID_PATTERN.fullmatch(text))
