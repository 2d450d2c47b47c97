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


def new_id() -> str:
    return "".join(secrets.choice(ID_ALPHABET) for _ in range(ID_LENGTH))


def new_code() -> str:
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


def is_id_fragment(text: object) -> bool:
    """True when `text` is made only of id characters (so it can never act as a pattern)."""
    return isinstance(text, str) and 0 < len(text) <= ID_LENGTH and bool(ID_PATTERN.fullmatch(text))
