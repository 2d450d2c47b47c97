"""Where the peers run: in this process (LocalGroup) or in a child process (RemoteGroup).

Both expose the same coroutine API to the scenario: connect() -> (ok, failures, delivery_ack),
start(start_at), stop() -> harness CPU seconds. Every event ends up in the parent's Ledger; a child batches
its events through a pipe every few milliseconds, in order, so the ledger sees each send before its ack.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import resource
from collections import Counter
from dataclasses import dataclass

from bench.ledger import Ledger
from bench.peers import PeerGroup
from bench.plans import PlanSpec, build_plan
from bench.roster import Roster

FLUSH_INTERVAL = 0.02


@dataclass
class GroupConfig:
    """Everything a group needs; picklable for the spawn start method."""

    roster: dict
    indices: list[int]
    urls: list[str]
    run_tag: str
    spec: PlanSpec | None
    interval: float | None = None
    offsets: dict[int, float] | None = None
    connect_concurrency: int = 20
    hello_timeout: float = 10.0
    want_delivery_ack: bool = True
    paced: bool = False


def own_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _make_group(config: GroupConfig, sink) -> tuple[PeerGroup, dict]:
    roster = Roster.from_dict(config.roster)
    group = PeerGroup(roster, config.indices, config.urls, sink, run_tag=config.run_tag,
                      connect_concurrency=config.connect_concurrency, hello_timeout=config.hello_timeout,
                      want_delivery_ack=config.want_delivery_ack, paced=config.paced)
    plan = build_plan(roster, config.spec, only=config.indices) if config.spec else {}
    return group, plan


class LocalGroup:
    def __init__(self, config: GroupConfig, ledger: Ledger) -> None:
        self.config = config
        self.group, self.plan = _make_group(config, ledger)
        self._sending: asyncio.Task | None = None

    async def connect(self) -> tuple[int, Counter, bool]:
        ok, failures = await self.group.connect_all()
        return ok, failures, self.group.delivery_ack

    async def start(self, start_at: float) -> None:
        self._sending = asyncio.create_task(
            self.group.run_plan(self.plan, start_at, self.config.interval, self.config.offsets))

    async def stop(self) -> float:
        if self._sending:
            self._sending.cancel()
        await self.group.close_all()
        return 0.0  # this process's CPU is counted once by the caller


# --- child process ----------------------------------------------------------------------------------------

class PipeSink:
    """Ledger-shaped sink in a child: appends events in order and ships them in batches."""

    def __init__(self, conn) -> None:
        self.conn = conn
        self.events: list[tuple] = []

    def on_send(self, client_id, at, lag=None):
        self.events.append(("s", client_id, at, lag))

    def on_ack(self, client_id, at, message_id, error):
        self.events.append(("a", client_id, at, message_id, error))

    def on_push(self, message_id, at):
        self.events.append(("p", message_id, at))

    def on_error(self, reason, count=1):
        self.events.append(("e", reason, count))

    def flush(self) -> None:
        if self.events:
            batch, self.events = self.events, []
            self.conn.send(("events", batch))


def apply_events(ledger: Ledger, batch: list[tuple]) -> None:
    for event in batch:
        tag = event[0]
        if tag == "p":
            ledger.on_push(event[1], event[2])
        elif tag == "a":
            ledger.on_ack(event[1], event[2], event[3], event[4])
        elif tag == "s":
            ledger.on_send(event[1], event[2], event[3])
        else:
            ledger.on_error(event[1], event[2])


def child_main(conn, config: GroupConfig) -> None:
    asyncio.run(_child(conn, config))


async def _child(conn, config: GroupConfig) -> None:
    loop = asyncio.get_running_loop()
    inbox: asyncio.Queue = asyncio.Queue()

    def readable() -> None:
        try:
            while conn.poll():
                inbox.put_nowait(conn.recv())
        except EOFError:  # parent gone: stop
            loop.remove_reader(conn.fileno())
            inbox.put_nowait(("stop",))

    loop.add_reader(conn.fileno(), readable)
    sink = PipeSink(conn)
    group, plan = _make_group(config, sink)
    ok, failures = await group.connect_all()
    sink.flush()
    conn.send(("connected", ok, dict(failures), group.delivery_ack))

    async def flusher() -> None:
        while True:
            await asyncio.sleep(FLUSH_INTERVAL)
            sink.flush()

    flushing = asyncio.create_task(flusher())
    sending = None
    cpu_at_go = own_cpu_seconds()  # report the run's CPU only, not connecting and encrypting
    while True:
        command = await inbox.get()
        if command[0] == "go":
            cpu_at_go = own_cpu_seconds()
            sending = asyncio.create_task(group.run_plan(plan, command[1], config.interval, config.offsets))
        elif command[0] == "stop":
            break
    if sending:
        sending.cancel()
    await group.close_all()
    flushing.cancel()
    sink.flush()
    conn.send(("closed", own_cpu_seconds() - cpu_at_go))


class RemoteGroup:
    """Parent-side proxy of a child process running a PeerGroup."""

    def __init__(self, config: GroupConfig, ledger: Ledger) -> None:
        self.ledger = ledger
        ctx = multiprocessing.get_context("spawn")  # never fork a process with a running event loop
        self.conn, child_conn = ctx.Pipe()
        self.proc = ctx.Process(target=child_main, args=(child_conn, config), daemon=True)
        self._connected: asyncio.Future | None = None
        self._closed: asyncio.Future | None = None

    def _readable(self) -> None:
        try:
            while self.conn.poll():
                message = self.conn.recv()
                kind = message[0]
                if kind == "events":
                    apply_events(self.ledger, message[1])
                elif kind == "connected" and not self._connected.done():
                    self._connected.set_result((message[1], Counter(message[2]), message[3]))
                elif kind == "closed" and not self._closed.done():
                    self._closed.set_result(message[1])
        except (EOFError, OSError):
            asyncio.get_running_loop().remove_reader(self.conn.fileno())
            for future in (self._connected, self._closed):
                if future is not None and not future.done():
                    future.set_exception(RuntimeError("harness child process died"))

    async def connect(self) -> tuple[int, Counter, bool]:
        loop = asyncio.get_running_loop()
        self._connected, self._closed = loop.create_future(), loop.create_future()
        self.proc.start()
        loop.add_reader(self.conn.fileno(), self._readable)
        return await self._connected

    async def start(self, start_at: float) -> None:
        self.conn.send(("go", start_at))

    async def stop(self) -> float:
        try:
            self.conn.send(("stop",))
            cpu = await asyncio.wait_for(self._closed, 15)
        except (OSError, TimeoutError, RuntimeError):
            cpu = 0.0
        try:
            asyncio.get_running_loop().remove_reader(self.conn.fileno())
        except (OSError, ValueError):
            pass
        self.proc.join(5)
        if self.proc.is_alive():
            self.proc.kill()
        return cpu
