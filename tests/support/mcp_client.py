"""Driving `claudemesh mcp` as Claude Code does: the `mcp` package's stdio client, with the channel notifications
the server pushes collected in a queue."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mcp.client.extension import NotificationBinding
from mcp.client.session import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client
from pydantic import BaseModel, ConfigDict

ROOT = Path(__file__).resolve().parents[2]


class ChannelParams(BaseModel):
    model_config = ConfigDict(extra="allow")
    content: str
    meta: dict[str, str]


@dataclass
class McpSession:
    session: ClientSession
    init: Any  # the initialize result
    received: asyncio.Queue[ChannelParams]

    async def call(self, name: str, args: dict | None = None) -> tuple[str, bool]:
        result = await self.session.call_tool(name, args or {})
        return result.content[0].text, result.is_error

    async def wait_open(self) -> tuple[str, bool]:
        """`whoami` until the broker connection (made in the background) is open; its last answer."""
        text, error = await self.call("whoami")
        for _ in range(50):
            if "open" in text:
                break
            await asyncio.sleep(0.2)
            text, error = await self.call("whoami")
        return text, error

    async def next_message(self, timeout: float = 20) -> ChannelParams:
        """The next channel notification that is a message (broker events are skipped)."""
        while (note := await asyncio.wait_for(self.received.get(), timeout)).meta.get("kind") == "system":
            pass
        return note


@asynccontextmanager
async def mcp_session(env: dict[str, str], received: asyncio.Queue | None = None,
                      cwd: str | None = None) -> AsyncIterator[McpSession]:
    """A `claudemesh mcp` process with `env` (in `cwd`, default the repository), initialised; its channel
    notifications go to `received`."""
    queue: asyncio.Queue[ChannelParams] = received if received is not None else asyncio.Queue()

    async def on_channel(params: ChannelParams) -> None:
        await queue.put(params)

    binding = NotificationBinding(method="notifications/claude/channel", params_type=ChannelParams, handler=on_channel)
    server = StdioServerParameters(command=sys.executable, args=["-m", "peer.cli", "mcp"], env=env, cwd=cwd or str(ROOT))
    async with stdio_client(server) as (read, write), ClientSession(read, write,
                                                                     notification_bindings=[binding]) as session:
        init = await session.initialize()
        yield McpSession(session, init, queue)
