"""A bot that answers direct messages: it reads what arrives and replies to the sender, both encrypted.

    CLAUDEMESH_CONFIG_DIR=.bot python examples/dm_echo_bot.py <invite link> [seconds]
"""

from __future__ import annotations

import asyncio
import sys

from peer import Mesh
from peer.config import ConfigStore


async def main(invite: str, seconds: float) -> None:
    if not ConfigStore().load().meshes:
        Mesh.join(invite, name="echo-bot")
    async with Mesh.open() as mesh:
        print("ready", flush=True)
        async for message in mesh.messages(timeout=seconds):
            if message.topic is None and message.sender_member_id:
                await mesh.send(message.sender_member_id, f"echo: {message.plaintext}")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], float(sys.argv[2]) if len(sys.argv) > 2 else 60.0))
