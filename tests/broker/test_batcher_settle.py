"""Batcher.settle: a closing socket waits for its own delivery marks, not for everyone else's traffic."""

from __future__ import annotations

import asyncio

import pytest

from broker.batcher import Batcher

# The batcher flushes through database_sync_to_async, which touches Django's connections.
pytestmark = pytest.mark.django_db(transaction=True)


async def test_settle_waits_for_earlier_items_only():
    # Given a batcher whose flushes take a while and a steady stream of new items
    flushed: list[int] = []

    def flush(items):
        import time

        time.sleep(0.02)
        flushed.extend(items)

    async def done(items, result, error):
        return None

    batcher = Batcher(window=0.001, flush_fn=flush, done_fn=done)
    for n in range(5):
        batcher.add(n)

    async def keep_adding():
        n = 100
        while True:
            batcher.add(n)
            n += 1
            await asyncio.sleep(0.001)

    feeder = asyncio.ensure_future(keep_adding())
    try:
        # When a caller settles, then it returns once the first five are flushed although items keep coming
        await asyncio.wait_for(batcher.settle(), timeout=2)
        assert set(range(5)) <= set(flushed)
        # (drain, by contrast, would wait for the stream to stop)
        assert not batcher._idle()
    finally:
        feeder.cancel()
    await batcher.drain()


async def test_settle_returns_at_once_when_nothing_is_queued():
    batcher = Batcher(window=0.001, flush_fn=lambda items: None, done_fn=lambda *a: asyncio.sleep(0))
    await asyncio.wait_for(batcher.settle(), timeout=0.5)
