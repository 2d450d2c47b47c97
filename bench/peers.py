"""One simulated peer (a WebSocket + hello) and a group of them sharing one event loop.

Kept cheap on purpose so the harness loads the broker, not itself: frames are pre-serialised strings, no
client pings, no permessage-deflate (ciphertext does not compress), push_acks batched per read burst.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections import Counter
from collections.abc import Callable, Sequence

import websockets
from websockets.asyncio.client import ClientConnection, connect

from bench.roster import Roster, RosterMember
from protocol.hello import hello_frame

# A push_ack frame carries many 32-char ids; stay far below the broker's 64 KiB frame limit.
PUSH_ACK_BATCH = 500
# Paced sending, as the reference CLI and load test do: a 1 ms pause after every PACED_EVERY sends.
PACED_EVERY = 100
# Broker events (never push_acked, never counted) recognised before json.loads; both common separators.
SYSTEM_MARKER = '"subtype":"system"'
SYSTEM_MARKER_SPACED = '"subtype": "system"'


_last_stamp: dict[str, int] = {}


def _unique_stamp(member_id: str) -> int:
    """A hello timestamp no other socket of this member used: the broker accepts each signed hello once, and many
    sockets of one roster member open within the same millisecond."""
    stamp = max(int(time.time() * 1000), _last_stamp.get(member_id, 0) + 1)
    _last_stamp[member_id] = stamp
    return stamp


class HelloRejected(Exception):
    """The broker answered hello with an error or closed the socket before hello_ack."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Peer:
    """A roster member's connection. Events go to `sink` (a Ledger, or a batching pipe in a child process)."""

    def __init__(self, index: int, member: RosterMember, mesh_id: str, url: str, session_id: str, sink,
                 want_delivery_ack: bool = True, plain_hello: bool = False) -> None:
        self.index = index
        self.member = member
        self.mesh_id = mesh_id
        self.url = url
        self.session_id = session_id
        self.sink = sink
        self.want_delivery_ack = want_delivery_ack and not plain_hello
        self.plain_hello = plain_hello  # v0.1's hello: no peerType, channel or deliveryAck
        self.delivery_ack = False  # set from hello_ack: push_ack only when the broker supports it
        self.ws: ClientConnection | None = None
        self.closing = False
        self.ready = False  # hello_ack received
        self._hello: asyncio.Future | None = None
        self._reader: asyncio.Task | None = None
        self._acker: asyncio.Task | None = None
        self._pending_acks: list[str] = []
        self._ack_wakeup = asyncio.Event()

    async def open(self, timeout: float) -> None:
        """Connect and complete the hello handshake, or raise HelloRejected / TimeoutError / OSError."""
        self.ws = await connect(self.url, compression=None, ping_interval=None, open_timeout=timeout,
                                close_timeout=2, max_size=2**20, max_queue=None)
        self._hello = asyncio.get_running_loop().create_future()
        self._reader = asyncio.create_task(self._read())
        extras = {} if self.plain_hello else {
            "peerType": "ai", "channel": "bench", "deliveryAck": True if self.want_delivery_ack else None,
        }  # fmt: skip
        hello = hello_frame(
            mesh_id=self.mesh_id, member_id=self.member.member_id, pubkey=self.member.pubkey,
            secret_hex=self.member.secret_key, session_id=self.session_id, pid=os.getpid(), cwd="/bench",
            timestamp=_unique_stamp(self.member.member_id), **extras,
        )
        await self.ws.send(json.dumps(hello))
        await asyncio.wait_for(asyncio.shield(self._hello), timeout)
        if self.delivery_ack:
            self._acker = asyncio.create_task(self._write_push_acks())

    async def send(self, frame: str) -> None:
        await self.ws.send(frame)

    async def close(self) -> None:
        self.closing = True
        if self._acker:
            self._acker.cancel()
        if self.ws is not None:
            try:
                await self.ws.close()
            except Exception:  # a broken socket at teardown changes nothing in the figures
                pass
        if self._reader:
            self._reader.cancel()

    def _hello_failed(self, reason: str) -> None:
        if self._hello is not None and not self._hello.done():
            self._hello.set_exception(HelloRejected(reason))

    async def _read(self) -> None:
        ws = self.ws
        try:
            async for raw in ws:
                now = time.monotonic()
                if isinstance(raw, bytes):  # the protocol allows binary frames holding UTF-8 JSON
                    raw = raw.decode("utf-8", "replace")
                if SYSTEM_MARKER in raw or SYSTEM_MARKER_SPACED in raw:
                    # peer_joined/peer_left: with K sockets in one mesh, K² of them arrive while connecting. Not
                    # parsing them keeps the harness's CPU for the traffic being measured. Payloads are base64,
                    # so a real message can never contain this text.
                    continue
                try:
                    msg = json.loads(raw)
                except ValueError:
                    self.sink.on_error("bad_json_from_broker")
                    continue
                kind = msg.get("type")
                if kind == "push":
                    self._on_push(msg, now)
                elif kind == "ack":
                    error = None
                    if msg.get("queued") is False:
                        error = msg.get("error") or "rejected"
                    self.sink.on_ack(msg.get("id", ""), now, msg.get("messageId") or "", error)
                elif kind == "hello_ack":
                    self.delivery_ack = self.want_delivery_ack and bool(msg.get("deliveryAck"))
                    self.ready = True
                    if self._hello is not None and not self._hello.done():
                        self._hello.set_result(msg)
                elif kind == "error":
                    code = msg.get("code") or "unknown"
                    if self._hello is not None and not self._hello.done():
                        self._hello_failed(f"hello:{code}")
                    else:
                        self.sink.on_error(f"error:{code}")
        except websockets.ConnectionClosed:
            pass
        finally:
            rcvd = ws.protocol.close_rcvd  # the asyncio API keeps the close frame on its Protocol
            reason = f"closed:{rcvd.code} {rcvd.reason}".strip() if rcvd else "closed:no_close_frame"
            self._hello_failed(reason)
            if not self.closing:
                self.sink.on_error(reason)

    def _on_push(self, msg: dict, now: float) -> None:
        if msg.get("subtype") == "system" or msg.get("senderPubkey") == "system":
            return  # peer_joined/peer_left and other broker events: not messages, never push_acked
        message_id = msg.get("messageId")
        if not message_id:
            self.sink.on_error("push_without_messageId")
            return
        self.sink.on_push(message_id, now)
        if self.delivery_ack:
            self._pending_acks.append(message_id)
            self._ack_wakeup.set()

    async def _write_push_acks(self) -> None:
        """Acknowledge pushes in batches: everything read since the last write goes in one frame."""
        while True:
            await self._ack_wakeup.wait()
            self._ack_wakeup.clear()
            while self._pending_acks:
                batch, self._pending_acks = self._pending_acks[:PUSH_ACK_BATCH], self._pending_acks[PUSH_ACK_BATCH:]
                try:
                    await self.ws.send(json.dumps({"type": "push_ack", "messageIds": batch}))
                except websockets.ConnectionClosed:
                    return


# A send plan: for each sending peer index, its frames as (client id, frame text), or (client id, a callable that
# encrypts and serialises the frame when it is sent) in paced runs.
SendPlan = dict[int, list[tuple[str, str | Callable[[], str]]]]


class PeerGroup:
    """The peers one process drives: connects them with bounded concurrency and runs send plans."""

    def __init__(self, roster: Roster, indices: Sequence[int], urls: Sequence[str], sink, *, run_tag: str,
                 connect_concurrency: int = 20, hello_timeout: float = 10.0, want_delivery_ack: bool = True,
                 member_for: Callable[[int], RosterMember] | None = None, paced: bool = False) -> None:
        self.sink = sink
        self.paced = paced  # connects in batches, v0.1 hellos, sends encrypted inline with a pause every 100
        self.connect_concurrency = connect_concurrency
        self.hello_timeout = hello_timeout
        member_for = member_for or (lambda i: roster.members[i % len(roster.members)])
        # Peers are spread over the broker URLs round-robin by index, so with two workers about half the
        # direct messages cross workers. Each peer says hello in its own member's mesh.
        self.peers: dict[int, Peer] = {}
        for i in indices:
            member = member_for(i)
            self.peers[i] = Peer(i, member, member.mesh_id, urls[i % len(urls)], f"bench-{run_tag}-{i}", sink,
                                 want_delivery_ack, plain_hello=paced)
        self.failures: Counter[str] = Counter()

    async def connect_all(self) -> tuple[int, Counter[str]]:
        gate = asyncio.Semaphore(self.connect_concurrency)

        async def one(peer: Peer) -> bool:
            async with gate:
                try:
                    await peer.open(self.hello_timeout)
                    return True
                except HelloRejected as exc:
                    self.failures[exc.reason] += 1
                except TimeoutError:
                    self.failures["hello_timeout"] += 1
                except (OSError, websockets.InvalidHandshake, websockets.ConnectionClosed) as exc:
                    self.failures[f"connect:{type(exc).__name__}"] += 1
                await peer.close()
                return False

        peers = list(self.peers.values())
        if not self.paced:
            return sum(await asyncio.gather(*(one(p) for p in peers))), self.failures
        ok = 0  # paced: a batch of `connect_concurrency` at a time, each batch complete before the next
        for start in range(0, len(peers), self.connect_concurrency):
            ok += sum(await asyncio.gather(*(one(p) for p in peers[start:start + self.connect_concurrency])))
        return ok, self.failures

    @property
    def delivery_ack(self) -> bool:
        return any(p.delivery_ack for p in self.peers.values())

    async def run_plan(self, plan: SendPlan, start_at: float, interval: float | None = None,
                       offsets: dict[int, float] | None = None) -> None:
        """Send every frame of `plan` for the peers of this group.

        interval None (burst): at start_at, round by round, each sender sends its next frame, yielding to the
        readers between rounds. Otherwise (steady): sender i sends frame k at start_at + offsets[i] + k *
        interval; a late send goes out at once and its lag is recorded.
        """
        mine = {i: frames for i, frames in plan.items() if i in self.peers and self.peers[i].ws is not None}
        delay = start_at - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        if interval is None:
            await self._burst(mine)
        else:
            await asyncio.gather(*(self._steady(i, frames, start_at + (offsets or {}).get(i, 0.0), interval)
                                   for i, frames in mine.items()))

    async def _burst(self, plan: SendPlan) -> None:
        on_send = self.sink.on_send
        rounds = max((len(f) for f in plan.values()), default=0)
        sends = 0
        for k in range(rounds):
            for i, frames in plan.items():
                if k < len(frames):
                    client_id, frame = frames[k]
                    if callable(frame):
                        frame = frame()
                    on_send(client_id, time.monotonic())
                    try:
                        await self.peers[i].send(frame)
                    except websockets.ConnectionClosed:
                        self.sink.on_error("send_on_closed_socket")
                    sends += 1
                    if self.paced and sends % PACED_EVERY == 0:
                        await asyncio.sleep(0.001)
            await asyncio.sleep(0)

    async def _steady(self, index: int, frames: list[tuple[str, str]], first_due: float, interval: float) -> None:
        peer = self.peers[index]
        for k, (client_id, frame) in enumerate(frames):
            due = first_due + k * interval
            wait = due - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            if callable(frame):
                frame = frame()
            now = time.monotonic()
            self.sink.on_send(client_id, now, now - due)
            try:
                await peer.send(frame)
            except websockets.ConnectionClosed:
                self.sink.on_error("send_on_closed_socket")
                return

    async def close_all(self) -> None:
        await asyncio.gather(*(p.close() for p in self.peers.values()), return_exceptions=True)
