"""Byte encodings and timestamp formats exactly as the v0.1 wire uses them (protocol.md §1.7, §1.8)."""

from __future__ import annotations

import base64
import binascii
import math
import re
from datetime import UTC, datetime

HEX64 = re.compile(r"^[0-9a-fA-F]{64}$")
HEX128 = re.compile(r"^[0-9a-fA-F]{128}$")


class EncodingError(ValueError):
    """Input is not in the encoding the wire requires."""


def b64url_encode(data: bytes) -> str:
    """base64url without padding (root keys, v1 tokens, API key secrets, x25519 keys on v2 claims)."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    if not isinstance(text, str) or not re.fullmatch(r"[A-Za-z0-9_-]*", text):
        raise EncodingError("not base64url")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as exc:
        raise EncodingError("not base64url") from exc


def b64_encode(data: bytes) -> str:
    """Standard base64 with padding (message nonce and ciphertext)."""
    return base64.b64encode(data).decode("ascii")


def b64_decode(text: str) -> bytes:
    if not isinstance(text, str):
        raise EncodingError("not base64")
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise EncodingError("not base64") from exc


def hex_decode(text: str, size: int) -> bytes:
    if not isinstance(text, str) or len(text) != size * 2:
        raise EncodingError(f"expected {size * 2} hex chars")
    try:
        return bytes.fromhex(text)
    except ValueError as exc:
        raise EncodingError("not hex") from exc


def iso_ms(moment: datetime) -> str:
    """JavaScript `toISOString()`: UTC, exactly three fractional digits, trailing Z."""
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def iso_or_none(moment: datetime | None) -> str | None:
    """`iso_ms`, or None (JSON null) for a moment that is not set."""
    return iso_ms(moment) if moment is not None else None


def epoch_ms(moment: datetime) -> int:
    """Milliseconds since the epoch (the scheduler's `deliverAt`, protocol.md §1.7)."""
    return int(moment.timestamp() * 1000)


def from_epoch_ms(value: int | float) -> datetime:
    """The UTC moment of an epoch-milliseconds value."""
    return datetime.fromtimestamp(value / 1000, tz=UTC)


def js_number(value: int | float) -> str:
    """Render a JSON number as JavaScript's `String(n)` does for the integers the wire carries.

    Python prints 1777716672345.0 and 1e+16 where JavaScript prints 1777716672345 and 10000000000000000.
    """
    if isinstance(value, bool):
        raise EncodingError("boolean is not a number")
    if isinstance(value, float):
        if not math.isfinite(value):
            raise EncodingError("number is not finite")
        if value.is_integer() and abs(value) < 1e21:
            return str(int(value))
        return repr(value)
    return str(int(value))
