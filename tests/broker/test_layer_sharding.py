"""A channel layer sharded over two Redis servers routes worker-to-worker messages to the shard the worker reads."""

from __future__ import annotations

import asyncio
import os
import secrets

import pytest
from channels_redis.core import RedisChannelLayer

from broker.layer import routable_channel
from tests.support.servers import extra_redis_server

REDIS_URL = os.environ.get("REDIS_URL", "")
pytestmark = [pytest.mark.redis, pytest.mark.skipif(not REDIS_URL, reason="needs REDIS_URL")]


async def test_every_worker_channel_on_a_sharded_layer_gets_what_another_process_sends_it(tmp_path):
    # given two layer instances (two worker processes) over the same two Redis shards
    with extra_redis_server(tmp_path) as second:
        prefix = f"shard{secrets.token_hex(3)}"
        receiver, sender = (RedisChannelLayer(hosts=[REDIS_URL, second], prefix=prefix) for _ in range(2))
        try:
            for n in range(8):
                # when the receiver takes a worker channel and the other process sends to it
                name = await routable_channel(receiver)
                await sender.send(name, {"type": "doorbell", "n": n})
                # then it arrives (channels-redis' own `send` hashed such names to the wrong shard half the time)
                message = await asyncio.wait_for(receiver.receive(name), 5)
                assert message["n"] == n
        finally:
            await receiver.close_pools()
            await sender.close_pools()
