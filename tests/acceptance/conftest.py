"""Acceptance helpers: real members with real ed25519 keys, real signed hellos, the real ASGI application
in-process (WebsocketCommunicator), and the shared results file the suites write their figures to."""

from __future__ import annotations

import asyncio
import json
import os
import re
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator

from meshes.models import Member, Role
from protocol.crypto import SigningKeypair
from protocol.hello import hello_sign

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "docs" / "reliability-results.json"
SNAKE = re.compile(r"^[a-z][a-z0-9_]*$")


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "faults: stops the machine's Postgres and Redis (tests/acceptance/test_faults.py); run it as its own CI step"
    )


def record_results(suite: str, part: str, figures: dict[str, Any]) -> None:
    """Merge one test's figures from this run into docs/reliability-results.json (read by docs/reliability.md)."""
    data = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    data.setdefault(suite, {})[part] = {
        **figures,
        "recordedAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "database": "postgres" if os.environ.get("DATABASE_URL", "").startswith("postgres") else "sqlite",
        "channelLayer": "redis" if os.environ.get("REDIS_URL") else "in-memory",
    }
    RESULTS.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")


@dataclass
class Identity:
    member: Member
    keypair: SigningKeypair

    @property
    def pubkey(self) -> str:
        return self.keypair.public_hex


def new_identity(mesh, name: str, role: str = Role.MEMBER) -> Identity:
    keypair = SigningKeypair.generate()
    member = Member.objects.create(mesh=mesh, pubkey=keypair.public_hex, display_name=name, role=role)
    return Identity(member, keypair)


def hello_frame(identity: Identity, *, mesh_id: str | None = None, timestamp: int | None = None, **overrides) -> dict:
    member = identity.member
    mesh_id = mesh_id or member.mesh_id
    stamp, signature = hello_sign(
        mesh_id=mesh_id, member_id=member.id, pubkey=identity.pubkey, secret_hex=identity.keypair.secret_hex,
        **({"timestamp": timestamp} if timestamp is not None else {}),
    )
    frame = {
        "type": "hello", "meshId": mesh_id, "memberId": member.id, "pubkey": identity.pubkey,
        "sessionId": f"s-{uuid.uuid4().hex[:12]}", "pid": 4242, "cwd": "/tmp/acceptance",
        "timestamp": stamp, "signature": signature,
    }
    frame.update(overrides)
    return frame


class Crashed(AssertionError):
    """The consumer's application task ended with an exception: the worker code crashed on a frame."""


@dataclass
class Socket:
    """One in-process WebSocket. Reads straight from the communicator's output queue (no polling, no cancel)."""

    communicator: WebsocketCommunicator
    inbox: list[dict[str, Any]] = field(default_factory=list)
    closed: tuple[int, str] | None = None
    raw_out: list[str] = field(default_factory=list)

    async def send_obj(self, frame: Any) -> None:
        await self.communicator.send_to(text_data=json.dumps(frame))

    async def send_text(self, text: str) -> None:
        await self.communicator.send_input({"type": "websocket.receive", "text": text})  # "" is a legal frame too

    async def send_bytes(self, data: bytes) -> None:
        await self.communicator.send_input({"type": "websocket.receive", "bytes": data})

    def _check_alive(self) -> None:
        future = self.communicator.future
        if future.done() and not future.cancelled() and future.exception() is not None:
            raise Crashed(f"consumer crashed: {future.exception()!r}") from future.exception()

    async def read(self, timeout: float) -> dict[str, Any]:
        """The next frame; `{"type": "__closed__", ...}` for a close; TimeoutError when nothing comes."""
        try:
            output = await asyncio.wait_for(self.communicator.output_queue.get(), timeout)
        except TimeoutError:
            self._check_alive()
            raise
        if output["type"] == "websocket.close":
            self.closed = (output.get("code"), output.get("reason", ""))
            return {"type": "__closed__", "code": output.get("code"), "reason": output.get("reason", "")}
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
            if frame["type"] == "__closed__":
                raise AssertionError(f"socket closed {frame}; inbox={self.inbox[-20:]}")
            self.inbox.append(frame)

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
            if frame["type"] == "__closed__":
                return seen

    async def close(self) -> None:
        try:
            await self.communicator.disconnect()
        except BaseException:  # noqa: S110 - the application already finished (closed by the broker)
            pass


async def open_socket(client=("127.0.0.1", 5555)) -> Socket:
    from claudemesh.asgi import application

    communicator = WebsocketCommunicator(application, "/ws")
    communicator.scope["client"] = client
    connected, _ = await communicator.connect()
    assert connected
    return Socket(communicator)


async def authenticated(identity: Identity, **overrides) -> Socket:
    sock = await open_socket()
    await sock.send_obj(hello_frame(identity, **overrides))
    await sock.expect("hello_ack")
    return sock


async def shutdown_broker() -> None:
    from django.db import connections

    from broker.worker import stop_current_worker

    await stop_current_worker()
    # channels-redis binds to the loop that first used it: the next test's loop gets a fresh layer object.
    from channels.layers import channel_layers

    channel_layers.backends.pop("default", None)
    await database_sync_to_async(connections.close_all)()


def db(fn):
    return database_sync_to_async(fn)


def assert_clear_error(frame: dict[str, Any], request: dict[str, Any] | None = None) -> None:
    """protocol.md §1.4: code (snake_case) and message strings; `_reqId` echoed iff the request had a string one."""
    assert frame["type"] == "error", frame
    assert isinstance(frame.get("code"), str) and SNAKE.fullmatch(frame["code"]), frame
    assert isinstance(frame.get("message"), str) and frame["message"], frame
    if request is not None:
        req_id = request.get("_reqId")
        if isinstance(req_id, str):
            assert frame.get("_reqId") == req_id, (frame, request)
        else:
            assert "_reqId" not in frame, (frame, request)
