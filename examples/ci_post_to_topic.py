"""A CI job posts its result to a topic, end-to-end encrypted.

    CLAUDEMESH_CONFIG_DIR=.mesh python examples/ci_post_to_topic.py <invite link> deploys "build 412 is green"

The first run joins with the invite (the job's own identity, kept in CLAUDEMESH_CONFIG_DIR: cache it between
runs); later runs reuse it.
"""

from __future__ import annotations

import asyncio
import sys

from peer import Mesh
from peer.config import ConfigStore


async def main(invite: str, topic: str, text: str) -> None:
    if not ConfigStore().load().meshes:
        Mesh.join(invite, name="ci")
    async with Mesh.open() as mesh:
        await mesh.topic_join(topic)
        sent = await mesh.send(f"#{topic}", text)
        print(sent["messageId"])


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:4]))
