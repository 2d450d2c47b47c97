"""Each signed hello is accepted once. The signed string covers only `meshId|memberId|pubkey|timestamp`, so a
hello captured inside the skew window could otherwise be replayed as a second session of its member. Used
signatures are remembered in the shared cache (Redis with REDIS_URL, so every worker sees them) for as long as
their timestamp can pass the skew check; if the cache fails, this process remembers them itself."""

from __future__ import annotations

import logging
import time

from django.core.cache import cache

from broker import conf
from broker.services.handshake import HandshakeRejected

logger = logging.getLogger(__name__)

# A timestamp passes from `skew` before it to `skew` after it: a signature can be presented for twice the window.
REMEMBER_SECONDS = 2 * conf.HELLO_MAX_SKEW_MS / 1000 + 1
_seen_here: dict[str, float] = {}  # signature → when this process may forget it (only while the cache fails)


def _first_use_here(signature: str) -> bool:
    now = time.monotonic()
    for stale in [sig for sig, until in _seen_here.items() if until <= now]:
        del _seen_here[stale]
    if signature in _seen_here:
        return False
    _seen_here[signature] = now + REMEMBER_SECONDS
    return True


def hello_use_once(*, signature: str) -> None:
    """Raises HandshakeRejected("replayed") for a signature some worker has accepted before."""
    try:
        first = bool(cache.add(f"broker:hello-signature:{signature}", 1, timeout=REMEMBER_SECONDS))
    except Exception:  # the cache is down: fall back to this process's memory rather than refuse every hello
        logger.warning("hello replay cache unavailable; remembering signatures in this process", exc_info=True)
        first = _first_use_here(signature)
    if not first:
        raise HandshakeRejected("replayed", "this signed hello was already used; sign a new one")
