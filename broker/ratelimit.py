"""Token buckets (protocol.md §7.4): a new key starts full, refills continuously, a refused request consumes
nothing. In memory, per worker process: with N workers a member may send up to N× the configured rate
(documented in docs/broker.md); the hot send path never waits on a network round trip for it.
"""

from __future__ import annotations

import time


class TokenBuckets:
    def __init__(self, *, burst: int, per_minute: int, idle_forget_seconds: float = 600.0):
        self.burst = burst
        self.per_ms = per_minute / 60_000.0
        self.idle_forget = idle_forget_seconds
        self._buckets: dict[str, tuple[float, float]] = {}  # key → (tokens, last ms)

    def take(self, key: str, now_ms: float | None = None) -> bool:
        now = time.monotonic() * 1000 if now_ms is None else now_ms
        tokens, last = self._buckets.get(key, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - last) * self.per_ms)
        if tokens < 1:
            self._buckets[key] = (tokens, now)
            return False
        self._buckets[key] = (tokens - 1, now)
        return True

    def forget_idle(self) -> None:
        cutoff = time.monotonic() * 1000 - self.idle_forget * 1000
        self._buckets = {k: v for k, v in self._buckets.items() if v[1] >= cutoff}


def send_limit_text(burst: int, per_minute: int) -> str:
    return f"rate_limit: max {per_minute} msg/min (burst {burst}) — slow down"
