"""Invite link shapes (client.md §3.1) → what to do with them.

Two outcomes: a v1 token to verify and enroll with, or a short code to resolve (v1 via the platform's
`/api/public/invite-code/<code>`, or a v2 claim when opted in). The host and scheme of a short link are kept
so a localhost platform over plain http works.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

SHORT_CODE = re.compile(r"^[A-Za-z0-9]{6,16}$")
RAW_TOKEN = re.compile(r"^[A-Za-z0-9_-]{21,}$")
LOCALE = re.compile(r"^[a-z]{2}$")


class LinkError(ValueError):
    """The argument is not an invite link or code we understand."""


@dataclass(frozen=True)
class V1Token:
    token: str


@dataclass(frozen=True)
class ShortCode:
    code: str
    origin: str | None  # scheme://host[:port] of the link, None for a bare code


def parse_invite(text: str) -> V1Token | ShortCode:
    value = (text or "").strip()
    if not value:
        raise LinkError("no invite link or code given")
    if value.startswith("claudemesh://"):
        value = "https://claudemesh.com/" + value[len("claudemesh://") :]
    if value.startswith("ic://join/"):
        token = value[len("ic://join/") :].strip("/")
        if not token:
            raise LinkError("ic://join/ link has no token")
        return V1Token(unquote(token))
    if "://" not in value and "/" in value:
        value = "https://" + value  # host[/xx]/i/<code> without a scheme
    if "://" in value:
        return _parse_url(value)
    if SHORT_CODE.fullmatch(value):
        return ShortCode(code=value, origin=None)
    if RAW_TOKEN.fullmatch(value):
        return V1Token(value)
    raise LinkError(f"not an invite link or code: {value[:60]!r}")


def _parse_url(value: str) -> V1Token | ShortCode:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise LinkError(f"unsupported invite link: {value[:60]!r}")
    segments = [unquote(s) for s in parts.path.split("/") if s]
    if segments and LOCALE.fullmatch(segments[0]) and len(segments) >= 3:
        segments = segments[1:]  # /<2-letter-locale>/join/<token>
    if len(segments) == 2 and segments[0] == "join" and segments[1]:
        return V1Token(segments[1])
    if len(segments) == 2 and segments[0] == "i" and SHORT_CODE.fullmatch(segments[1]):
        return ShortCode(code=segments[1], origin=f"{parts.scheme}://{parts.netloc}")
    raise LinkError(f"not an invite link (expected /join/<token> or /i/<code>): {value[:80]!r}")
