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
            redis_url=os.environ["REDIS_URL"],
            prefix=prefix,
            burst=3,
            per_minute=1,
            fallback=TokenBuckets(burst=3, per_minute=1),
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
    buckets = SharedTokenBuckets(
        redis_url="redis://127.0.0.1:1/0", prefix="x", burst=1, per_minute=1, fallback=fallback
    )
    try:
        assert await buckets.take("m") is True
        assert await buckets.take("m") is False
    finally:
        await buckets.close()


def _shared(prefix: str, *, burst: int, lease: int | None = None) -> SharedTokenBuckets:
    return SharedTokenBuckets(
        redis_url=os.environ["REDIS_URL"], prefix=prefix, burst=burst, per_minute=1,
        fallback=TokenBuckets(burst=burst, per_minute=1), lease=lease,
    )  # fmt: skip


@pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="needs REDIS_URL")
async def test_leased_tokens_never_let_workers_exceed_the_shared_burst():
    # given two workers that each lease spare tokens (burst 40 → 2 spare per Redis call)
    prefix = f"test-{secrets.token_hex(4)}"
    workers = [_shared(prefix, burst=40) for _ in range(2)]
    try:
        assert workers[0].lease == 2
        # when they take for the same member in turn, one and several at a time, well past the burst
        allowed = 0
        for n in range(60):
            allowed += sum(await workers[n % 2].take_many(["member"] * (1 + n % 3)))
        # then together they allowed exactly the burst: leases come out of it, and are spent before refusing
        assert allowed == 40
    finally:
        for worker in workers:
            await worker.close()


@pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="needs REDIS_URL")
async def test_a_lease_spares_the_redis_round_trips_of_the_next_sends():
    # given a worker leasing 9 spare tokens per Redis call, with its Redis calls counted
    buckets = _shared(f"test-{secrets.token_hex(4)}", burst=1000, lease=9)
    calls = []
    take = buckets._take

    async def counted(**kwargs):
        calls.append(kwargs["args"][2:])
        return await take(**kwargs)

    buckets._take = counted
    try:
        # when one member sends 25 messages one at a time
        results = [await buckets.take("member") for _ in range(25)]
        # then all pass and only every tenth send asked Redis (for itself and 9 spare)
        assert results == [True] * 25
        assert calls == [[10], [10], [10]]
        # and a fan-out charge is paid from the lease first
        await buckets.charge_many({"member": 4})
        assert len(calls) == 3 and buckets._leased["member"][0] == 1
    finally:
        await buckets.close()
