"""A real WebSocket peer for end-to-end tests (the `websockets` library, real hello signatures)."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import websockets

from protocol.hello import hello_frame


@dataclass
class RosterMember:
    mesh_id: str
    member_id: str
    pubkey: str
    secret_key: str


@dataclass
class E2EPeer:
    member: RosterMember
    url: str
    session_id: str = field(default_factory=lambda: f"e2e-{uuid.uuid4().hex[:10]}")
    delivery_ack: bool = True
    groups: list[dict[str, str]] = field(default_factory=list)
    frames: list[dict[str, Any]] = field(default_factory=list)
    pushes: list[tuple[float, str]] = field(default_factory=list)  # (monotonic time, messageId)
    closed: asyncio.Event = field(default_factory=asyncio.Event)
    close_code: int | None = None
    _ws: Any = None
    _reader: asyncio.Task | None = None
    _new: asyncio.Event = field(default_factory=asyncio.Event)

    async def connect(self, url: str | None = None, *, timeout: float = 10.0) -> dict[str, Any]:
        self.url = url or self.url
        self.closed = asyncio.Event()
        self._ws = await websockets.connect(self.url, max_size=2**20, open_timeout=timeout, ping_interval=None)
        hello = hello_frame(
            mesh_id=self.member.mesh_id, member_id=self.member.member_id, pubkey=self.member.pubkey,
            secret_hex=self.member.secret_key, session_id=self.session_id, pid=1, cwd="/e2e",
            deliveryAck=self.delivery_ack, groups=self.groups or None,
        )
        await self._ws.send(json.dumps(hello))
        self._reader = asyncio.ensure_future(self._read())
        return await self.expect("hello_ack", timeout=timeout)

    async def _read(self) -> None:
        try:
            async for raw in self._ws:
                frame = json.loads(raw)
                if frame.get("type") == "push" and frame.get("subtype") != "system":
                    self.pushes.append((time.monotonic(), frame["messageId"]))
                    if self.delivery_ack:
                        try:
                            await self._ws.send(json.dumps({"type": "push_ack", "messageIds": [frame["messageId"]]}))
                        except Exception:  # noqa: S110 - the socket died; the broker re-sends
                            pass
                self.frames.append(frame)
                self._new.set()
        except Exception:  # noqa: S110 - connection lost (worker killed)
            pass
        finally:
            self.close_code = getattr(self._ws, "close_code", None)
            self.closed.set()
            self._new.set()

    async def send(self, frame: dict[str, Any]) -> None:
        await self._ws.send(json.dumps(frame))

    async def expect(self, predicate, timeout: float = 10.0) -> dict[str, Any]:
        if isinstance(predicate, str):
            wanted = predicate
            predicate = lambda f: f.get("type") == wanted  # noqa: E731
        deadline = time.monotonic() + timeout
        seen = 0
        while True:
            for index in range(seen, len(self.frames)):
                if predicate(self.frames[index]):
                    return self.frames.pop(index)
            seen = len(self.frames)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"timed out waiting; last frames: {self.frames[-5:]}")
            self._new.clear()
            try:
                await asyncio.wait_for(self._new.wait(), remaining)
            except TimeoutError:
                pass

    async def request(self, frame: dict[str, Any], reply_type: str, timeout: float = 10.0) -> dict[str, Any]:
        req_id = uuid.uuid4().hex[:12]
        await self.send({**frame, "_reqId": req_id})
        return await self.expect(lambda f: f.get("type") == reply_type and f.get("_reqId") == req_id, timeout)

    async def close(self) -> None:
        if self._ws is not None:
            await self._ws.close()
        if self._reader is not None:
            try:
                await asyncio.wait_for(self._reader, 5)
            except Exception:  # noqa: S110
                pass
