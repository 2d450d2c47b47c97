"""Text the database can store: one rule for every path (platform and broker) that writes client-supplied strings."""

from __future__ import annotations


def storable(text: str) -> bool:
    """Postgres text refuses NUL and no UTF-8 store takes a lone surrogate; such a send must not fail its batch."""
    if "\x00" in text:
        return False
    try:
        text.isascii() or text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
