"""Token buckets: in-process semantics, the Redis-shared variant, and its safe degradation."""

from __future__ import annotations

import os
import secrets

import pytest

from broker.ratelimit import SharedTokenBuckets, TokenBuckets, send_limit_text


def test_bucket_refills_continuously_and_refusals_cost_nothing():
    buckets = TokenBuckets(burst=2, per_minute=60)
    assert [buckets.take("m", now_ms=0) for _ in range(3)] == [True, True, False]
    assert buckets.take("m", now_ms=999) is False
    assert buckets.take("m", now_ms=1000) is True  # one token per second
    assert buckets.take("other", now_ms=1000) is True
    assert send_limit_text(10, 60) == "rate_limit: max 60 msg/min (burst 10) — slow down"


@pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="needs REDIS_URL")
async def test_shared_buckets_hold_across_workers():
    prefix = f"test-{secrets.token_hex(4)}"
    workers = [
        SharedTokenBuckets(
            redis_url=os.environ["REDIS_URL"], prefix=prefix, burst=3, per_minute=1, fallback=TokenBuckets(burst=3, per_minute=1)
        )
        for _ in range(2)
    ]
    try:
        results = [await workers[n % 2].take("member") for n in range(5)]
        assert results == [True, True, True, False, False]  # one budget, whichever worker asks
    finally:
        for worker in workers:
            await worker.close()


async def test_shared_buckets_degrade_to_local_when_redis_is_down():
    fallback = TokenBuckets(burst=1, per_minute=1)
    buckets = SharedTokenBuckets(redis_url="redis://127.0.0.1:1/0", prefix="x", burst=1, per_minute=1, fallback=fallback)
    try:
        assert await buckets.take("m") is True
        assert await buckets.take("m") is False
    finally:
        await buckets.close()
