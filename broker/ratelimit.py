"""Token buckets (protocol.md §7.4): a new key starts full, refills continuously, a refused request consumes
nothing. `TokenBuckets` lives in one process; `SharedTokenBuckets` keeps them in Redis so a member's limit
holds across workers (used for `send` when REDIS_URL is set, docs/broker.md).
"""

from __future__ import annotations

import logging
import time
from collections import Counter

logger = logging.getLogger(__name__)


class TokenBuckets:
    def __init__(self, *, burst: int, per_minute: int, idle_forget_seconds: float = 600.0):
        self.burst = burst
        self.per_ms = per_minute / 60_000.0
        self.idle_forget = idle_forget_seconds
        self._buckets: dict[str, tuple[float, float]] = {}  # key → (tokens, last ms)

    def _refilled(self, key: str, now_ms: float | None) -> tuple[float, float]:
        """(tokens now, now in ms): the bucket refilled since it was last touched."""
        now = time.monotonic() * 1000 if now_ms is None else now_ms
        tokens, last = self._buckets.get(key, (float(self.burst), now))
        return min(float(self.burst), tokens + (now - last) * self.per_ms), now

    def take(self, key: str, now_ms: float | None = None) -> bool:
        tokens, now = self._refilled(key, now_ms)
        if tokens < 1:
            self._buckets[key] = (tokens, now)
            return False
        self._buckets[key] = (tokens - 1, now)
        return True

    def charge(self, key: str, amount: float, now_ms: float | None = None) -> None:
        """Take `amount` more tokens after the fact (a send's fan-out beyond its first recipient): the bucket may go
        into debt, down to one burst, and later sends wait until it is paid."""
        tokens, now = self._refilled(key, now_ms)
        self._buckets[key] = (max(-float(self.burst), tokens - amount), now)

    def forget_idle(self) -> None:
        cutoff = time.monotonic() * 1000 - self.idle_forget * 1000
        self._buckets = {k: v for k, v in self._buckets.items() if v[1] >= cutoff}


def send_limit_text(burst: int, per_minute: int) -> str:
    return f"rate_limit: max {per_minute} msg/min (burst {burst}) — slow down"


# One bucket per key in a Redis hash {t: tokens, ts: ms}; Redis' own clock, so workers agree on time. Each key
# asks for up to ARGV[i + 2] whole tokens and gets what the bucket holds of them.
TAKE_UP_TO_LUA = """
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) * 1000 + math.floor(tonumber(now_parts[2]) / 1000)
local burst = tonumber(ARGV[1])
local per_ms = tonumber(ARGV[2])
local results = {}
for i, key in ipairs(KEYS) do
  local data = redis.call('HMGET', key, 't', 'ts')
  local tokens = tonumber(data[1])
  local last = tonumber(data[2])
  if tokens == nil then tokens = burst; last = now end
  tokens = math.min(burst, tokens + math.max(0, now - last) * per_ms)
  local granted = math.max(0, math.min(tonumber(ARGV[i + 2]), math.floor(tokens)))
  tokens = tokens - granted
  redis.call('HSET', key, 't', tostring(tokens), 'ts', tostring(now))
  redis.call('PEXPIRE', key, 600000)
  results[i] = granted
end
return results
"""


CHARGE_LUA = """
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) * 1000 + math.floor(tonumber(now_parts[2]) / 1000)
local burst = tonumber(ARGV[1])
local per_ms = tonumber(ARGV[2])
for i, key in ipairs(KEYS) do
  local data = redis.call('HMGET', key, 't', 'ts')
  local tokens = tonumber(data[1])
  local last = tonumber(data[2])
  if tokens == nil then tokens = burst; last = now end
  tokens = math.min(burst, tokens + math.max(0, now - last) * per_ms)
  tokens = math.max(-burst, tokens - tonumber(ARGV[i + 2]))
  redis.call('HSET', key, 't', tostring(tokens), 'ts', tostring(now))
  redis.call('PEXPIRE', key, 600000)
end
return 1
"""


class SharedTokenBuckets:
    """The same buckets shared by every worker through Redis.

    A worker that asks Redis for tokens takes up to `lease` spare ones with them and spends those locally: at a few
    messages a second each send used to cost a Redis round trip, now about one in `lease + 1` does. Leased tokens
    are gone from the shared bucket, so workers together never allow more than the limit; spare tokens a worker
    does not use within `lease_seconds` are dropped (a member that moved to another worker is held back by at most
    one lease for that long). Redis errors never refuse a send: the worker falls back to its own in-memory buckets
    until Redis answers.
    """

    def __init__(
        self,
        *,
        redis_url: str,
        prefix: str,
        burst: int,
        per_minute: int,
        fallback: TokenBuckets,
        lease: int | None = None,
        lease_seconds: float = 10.0,
    ):
        import redis.asyncio as aioredis

        self.burst = burst
        self.per_ms = per_minute / 60_000.0
        self.prefix = prefix
        self.fallback = fallback
        self.lease = burst // 20 if lease is None else lease
        self.lease_seconds = lease_seconds
        self._leased: dict[str, tuple[float, float]] = {}  # key → (spare tokens, monotonic expiry)
        self._client = aioredis.from_url(redis_url, socket_connect_timeout=1, socket_timeout=1)
        self._take = self._client.register_script(TAKE_UP_TO_LUA)
        self._charge = self._client.register_script(CHARGE_LUA)
        self._degraded = False

    def _spend_leased(self, key: str, wanted: float, now: float) -> float:
        """Take up to `wanted` of this key's spare tokens; how many were taken."""
        spare, expires = self._leased.get(key, (0.0, 0.0))
        if expires <= now:
            self._leased.pop(key, None)
            return 0.0
        taken = min(spare, wanted)
        if spare - taken >= 1:
            self._leased[key] = (spare - taken, expires)
        else:
            self._leased.pop(key, None)
        return taken

    async def take_many(self, keys: list[str]) -> list[bool]:
        """One decision per key, in order (a key may repeat: each occurrence takes one token)."""
        if not keys:
            return []
        now = time.monotonic()
        budget = {key: int(self._spend_leased(key, count, now)) for key, count in Counter(keys).items()}
        missing = {key: count - budget[key] for key, count in Counter(keys).items() if count > budget[key]}
        if missing:
            await self._take_from_redis(missing, budget, now)
        allowed = []
        for key in keys:
            allowed.append(budget[key] > 0)
            budget[key] -= 1
        return allowed

    async def _take_from_redis(self, missing: dict[str, int], budget: dict[str, int], now: float) -> None:
        try:
            granted = await self._take(
                keys=[f"{self.prefix}:rate:{key}" for key in missing],
                args=[self.burst, self.per_ms, *(count + self.lease for count in missing.values())],
            )
        except Exception:
            if not self._degraded:
                logger.warning("shared rate limit unavailable; using this worker's buckets", exc_info=True)
                self._degraded = True
            for key, count in missing.items():
                budget[key] += sum(self.fallback.take(key) for _ in range(count))
            return
        self._degraded = False
        if len(self._leased) > 4096:  # members who left: their expired leases are never touched again
            self._leased = {key: lease for key, lease in self._leased.items() if lease[1] > now}
        for (key, count), got in zip(missing.items(), granted, strict=True):
            got = int(got)
            budget[key] += min(got, count)
            if got > count:
                self._leased[key] = (float(got - count), now + self.lease_seconds)

    async def charge_many(self, amounts: dict[str, float]) -> None:
        now = time.monotonic()
        owed = {key: amount - self._spend_leased(key, amount, now) for key, amount in amounts.items()}
        owed = {key: amount for key, amount in owed.items() if amount > 0}
        if not owed:
            return
        keys = list(owed)
        try:
            await self._charge(
                keys=[f"{self.prefix}:rate:{key}" for key in keys], args=[self.burst, self.per_ms, *owed.values()]
            )
        except Exception:
            logger.debug("shared rate-limit charge failed; charging this worker's buckets", exc_info=True)
            for key, amount in owed.items():
                self.fallback.charge(key, amount)

    async def take(self, key: str) -> bool:
        return (await self.take_many([key]))[0]

    async def close(self) -> None:
        try:
            await self._client.aclose()
        except Exception:  # noqa: S110 - closing a broken client is best effort
            pass
