"""Invite link shapes (client.md §3.1)."""

from __future__ import annotations

import pytest

from peer.links import LinkError, ShortCode, V1Token, parse_invite

TOKEN = "eyJ2IjoxLCJtZXNoX2lkIjoiYWJjIn0abcdefghij"


@pytest.mark.parametrize(
    ("link", "expected"),
    [
        (f"ic://join/{TOKEN}", V1Token(TOKEN)),
        (f"ic://join/{TOKEN}/", V1Token(TOKEN)),
        (f"https://claudemesh.com/join/{TOKEN}", V1Token(TOKEN)),
        (f"https://claudemesh.com/fr/join/{TOKEN}", V1Token(TOKEN)),
        (TOKEN, V1Token(TOKEN)),
        ("https://claudemesh.com/i/ABCD2345", ShortCode("ABCD2345", "https://claudemesh.com")),
        ("http://127.0.0.1:8123/i/ABCD2345", ShortCode("ABCD2345", "http://127.0.0.1:8123")),
        ("https://claudemesh.com/de/i/ABCD2345", ShortCode("ABCD2345", "https://claudemesh.com")),
        ("claudemesh.com/i/ABCD2345", ShortCode("ABCD2345", "https://claudemesh.com")),
        ("claudemesh://i/ABCD2345", ShortCode("ABCD2345", "https://claudemesh.com")),
        ("ABCD2345", ShortCode("ABCD2345", None)),
        ("  ABCD2345\n", ShortCode("ABCD2345", None)),
    ],
)
def test_accepted_shapes(link, expected):
    assert parse_invite(link) == expected


@pytest.mark.parametrize(
    "link",
    ["", "   ", "ic://join/", "ftp://host/join/x", "https://host/other/x", "https://host/i/!!", "abc", "hello world"],
)
def test_rejected_shapes(link):
    with pytest.raises(LinkError):
        parse_invite(link)
