"""The one in-process WebSocket client of the broker and acceptance suites, and the teardown after them.

It drives the real ASGI application through Channels' `WebsocketCommunicator`, using its documented API only
(`receive_nothing` to wait without cancelling the application, then `receive_output`). Frames it did not ask
for yet are kept, so expectations can be order-independent."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

from channels.db import database_sync_to_async
from channels.layers import channel_layers
from channels.testing import WebsocketCommunicator
from django.db import connections

from broker.worker import stop_current_worker
from tests.support.identities import Identity, hello_for

CLOSED = "__closed__"


def db(fn):
    return database_sync_to_async(fn)


class Crashed(AssertionError):
    """The consumer's application task ended with an exception: the worker code crashed on a frame."""


def _is_push(frame: dict[str, Any], message_id: str | None = None) -> bool:
    return (
        frame.get("type") == "push"
        and frame.get("subtype") != "system"
        and (message_id is None or frame.get("messageId") == message_id)
    )


@dataclass
class Socket:
    communicator: WebsocketCommunicator
    identity: Identity | None = None
    inbox: list[dict[str, Any]] = field(default_factory=list)
    closed: tuple[int, str] | None = None
    raw_out: list[str] = field(default_factory=list)

    # --- writes --------------------------------------------------------------------------------------------

    async def send(self, frame: Any) -> None:
        await self.communicator.send_to(text_data=json.dumps(frame))

    async def send_text(self, text: str) -> None:
        await self.communicator.send_input({"type": "websocket.receive", "text": text})  # "" is a legal frame too

    async def send_bytes(self, data: bytes) -> None:
        await self.communicator.send_input({"type": "websocket.receive", "bytes": data})

    # --- reads ---------------------------------------------------------------------------------------------

    async def read(self, timeout: float) -> dict[str, Any]:
        """The next frame; `{"type": "__closed__", ...}` for a close; TimeoutError when nothing comes."""
        try:
            nothing = await self.communicator.receive_nothing(timeout=timeout, interval=0.002)
        except Exception as exc:  # receive_nothing re-raises the application's own exception
            raise Crashed(f"consumer crashed: {exc!r}") from exc
        if nothing:
            raise TimeoutError
        output = await self.communicator.receive_output(1)
        if output["type"] == "websocket.close":
            self.closed = (output.get("code"), output.get("reason", ""))
            return {"type": CLOSED, "code": output.get("code"), "reason": output.get("reason", "")}
        text = output.get("text")
        assert text is not None, f"broker sent a non-text frame: {output}"
        text.encode("utf-8")  # a text frame must be valid UTF-8 (RFC 6455 §5.6); raises on a lone surrogate
        self.raw_out.append(text)
        frame = json.loads(text)
        assert isinstance(frame, dict) and isinstance(frame.get("type"), str), text
        return frame

    async def expect(self, predicate, timeout: float = 5.0) -> dict[str, Any]:
        if isinstance(predicate, str):
            wanted = predicate
            predicate = lambda f: f.get("type") == wanted  # noqa: E731
        for index, frame in enumerate(self.inbox):
            if predicate(frame):
                return self.inbox.pop(index)
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no matching frame within {timeout}s; inbox={self.inbox[-20:]}")
            try:
                frame = await self.read(remaining)
            except TimeoutError:
                continue
            if predicate(frame):
                return frame
            self.inbox.append(frame)
            if frame["type"] == CLOSED:
                raise AssertionError(f"socket closed {frame}; inbox={self.inbox[-20:]}")

    async def expect_push(self, message_id: str | None = None, timeout: float = 5.0) -> dict[str, Any]:
        return await self.expect(lambda f: _is_push(f, message_id), timeout)

    async def expect_event(self, event: str, timeout: float = 5.0) -> dict[str, Any]:
        return await self.expect(lambda f: f.get("type") == "push" and f.get("event") == event, timeout)

    async def expect_nothing(self, predicate=None, wait: float = 0.3) -> None:
        predicate = predicate or (lambda f: True)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            try:
                frame = await self.read(max(deadline - time.monotonic(), 0.01))
            except TimeoutError:
                break
            self.inbox.append(frame)
        hits = [f for f in self.inbox if predicate(f)]
        assert not hits, f"unexpected frames: {hits}"

    async def expect_close(self, timeout: float = 5.0) -> tuple[int, str]:
        if self.closed:
            return self.closed
        await self.expect(CLOSED, timeout)
        return self.closed

    async def until(self, predicate, timeout: float = 5.0) -> list[dict[str, Any]]:
        """Every frame up to (not including) the first matching one, in order."""
        seen: list[dict[str, Any]] = []
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no matching frame within {timeout}s; seen={seen[-20:]}")
            try:
                frame = await self.read(remaining)
            except TimeoutError:
                continue
            if predicate(frame):
                return seen
            seen.append(frame)
            if frame["type"] == CLOSED:
                return seen

    # --- close ---------------------------------------------------------------------------------------------

    async def disconnect(self) -> None:
        await self.communicator.disconnect()

    async def close(self) -> None:
        """Disconnect, tolerating an application that already finished (closed by the broker)."""
        try:
            await self.communicator.disconnect()
        except BaseException:  # noqa: S110
            pass


async def open_socket(
    identity: Identity | None = None, *, hello: bool = True, client=("127.0.0.1", 5555), application=None, **overrides
) -> Socket:
    """A connected socket; with an identity (and `hello`), authenticated with a signed hello and its ack read."""
    if application is None:
        from claudemesh.asgi import application  # the project's ASGI app is loaded once Django is set up

    communicator = WebsocketCommunicator(application, "/ws")
    communicator.scope["client"] = client
    connected, _ = await communicator.connect()
    assert connected
    sock = Socket(communicator, identity)
    if hello and identity is not None:
        await sock.send(hello_for(identity, **overrides))
        await sock.expect("hello_ack")
    return sock


async def shutdown_broker() -> None:
    """After a test: stop the worker of this loop and drop what binds to the loop."""
    await stop_current_worker()
    # channels-redis binds its receive machinery to the event loop that first used it; each test has its own
    # loop, so the next test gets a fresh layer object (a server process has one loop for its lifetime).
    channel_layers.backends.pop("default", None)
    # The DB thread's connection must not outlive the test (Postgres refuses to drop a test DB in use).
    await database_sync_to_async(connections.close_all)()
