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


_ID_SPACE = len(ID_ALPHABET) ** ID_LENGTH  # 62**32, about 2**190


def new_id() -> str:
    """One CSPRNG draw per id (32 `secrets.choice` calls were 15 % of the broker's CPU under load).

    256 random bits reduced modulo 62**32: the bias is below 2**-65.
    """
    number = int.from_bytes(secrets.token_bytes(32), "big") % _ID_SPACE
    chars = []
    for _ in range(ID_LENGTH):
        number, digit = divmod(number, 62)
        chars.append(ID_ALPHABET[digit])
    return "".join(chars)


def new_code() -> str:
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


def is_id_fragment(text: object) -> bool:
    """True when `text` is made only of id characters (so it can never act as a pattern)."""
    return isinstance(text, str) and 0 < len(text) <= ID_LENGTH and bool(ID_PATTERN.fullmatch(text))
