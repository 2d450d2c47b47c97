"""An idle worker's channel-layer receive is quiet: it blocks on Redis for as long as nothing comes, without the
read timing out and logging a traceback every few seconds (redis-py's 5 s socket timeout vs the 5 s BZPOPMIN)."""

from __future__ import annotations

import asyncio
import logging
import os

import pytest
from channels.layers import channel_layers

from broker.layer import WorkerLayer

pytestmark = pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="needs REDIS_URL (the channels-redis layer)")


async def test_an_idle_receive_waits_without_errors(caplog):
    channel_layers.backends.pop("default", None)  # bound to this test's loop
    layer = WorkerLayer()
    await layer.open()
    received = []

    async def on_message(message):
        received.append(message)

    with caplog.at_level(logging.WARNING, logger="broker.layer"):
        listener = asyncio.ensure_future(layer.listen(on_message))
        await asyncio.sleep(12)  # two BZPOPMIN timeouts and more
        assert not listener.done()
        listener.cancel()
        await asyncio.gather(listener, return_exceptions=True)
    assert [r.getMessage() for r in caplog.records] == []
    channel_layers.backends.pop("default", None)
