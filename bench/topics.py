"""Topic benchmarks against a running broker (see `bench.run_server`), over the wire like real peers.

    python -m bench.topics fanout  --roster R --url U [--senders 5] [--msgs 200]
    python -m bench.topics history --roster R --url U [--fill 100000] [--reads 200]

fanout: every roster member connects (all are in `general`); `--senders` of them each send `--msgs` messages to
`#general` as fast as acks allow (or `--rate` a second); every other connected member gets each one live. Reports deliveries/s and the
send→push latency percentiles over every delivery.
history: one member fills `general` with `--fill` messages, then reads `--reads` pages of 200 (`topic_history`
with `beforeId` at random points); reports the page latency percentiles.
The payload is opaque to the broker, so a stand-in ciphertext of the size of a CMS1 envelope is sent.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import sys
import time

from websockets.asyncio.client import connect

from bench.roster import load_roster
from protocol.hello import hello_frame

PIPELINE = 200  # sends in flight per sender
BODY = "Q01TMQ" + "A" * 1600  # about the base64 size of a CMS1 message carrying 1 KiB of text


async def open_peer(url: str, mesh_id: str, member, name: str, **fields):
    """A connection that has said hello (`fields`: more hello fields in wire spelling, e.g. groups)."""
    ws = await connect(url, max_size=2**24, ping_interval=None, compression=None)
    frame = hello_frame(mesh_id=mesh_id, member_id=member.member_id, pubkey=member.pubkey, secret_hex=member.secret_key,
                        session_id=f"bench-{name}", pid=0, cwd="/bench", displayName=name, **fields)
    await ws.send(json.dumps(frame))
    while True:
        reply = json.loads(await ws.recv())
        if reply.get("type") == "hello_ack":
            return ws
        if reply.get("type") == "error":
            raise RuntimeError(f"hello refused: {reply}")


def percentiles(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    if not ordered:
        return {}

    def at(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000, 1)

    return {"p50_ms": at(0.50), "p95_ms": at(0.95), "p99_ms": at(0.99), "max_ms": round(ordered[-1] * 1000, 1)}


async def send_many(ws, count: int, label: str, sent_at: dict[str, float] | None = None, rate: float = 0) -> list[str]:
    """`count` sends to #general, at most PIPELINE unanswered (and `rate` a second, when set); the acked ids."""
    ids: list[str] = []
    window = asyncio.Semaphore(PIPELINE)
    acked = asyncio.Event()

    async def reader():
        while len(ids) < count:
            frame = json.loads(await ws.recv())
            if frame.get("type") == "ack":
                if not frame.get("queued"):
                    raise RuntimeError(f"send refused: {frame}")
                ids.append(frame["messageId"])
                window.release()
        acked.set()

    task = asyncio.create_task(reader())
    begun = time.monotonic()
    for n in range(count):
        if rate:
            await asyncio.sleep(max(0.0, begun + n / rate - time.monotonic()))
        await window.acquire()
        stamp = f"{label}-{n}"
        if sent_at is not None:
            sent_at[stamp] = time.monotonic()
        await ws.send(json.dumps({"type": "send", "id": stamp, "targetSpec": "#general", "priority": "now",
                                  "nonce": "bm9uY2U=", "ciphertext": f"{stamp}:{BODY}"}))
    await acked.wait()
    await task
    return ids


async def fanout(args) -> dict:
    roster = load_roster(args.roster)
    members = list(roster.members)
    mesh_id = roster.mesh_id
    peers = [await open_peer(args.url, mesh_id, m, f"peer-{i}") for i, m in enumerate(members)]
    senders, receivers = peers[: args.senders], peers[args.senders :]
    # Receivers listen on their own sockets; the senders' sockets are read for acks only (pushes of the other
    # senders' messages that reach them are not counted).
    expected = args.senders * args.msgs * len(receivers)
    sent_at: dict[str, float] = {}
    latencies: list[float] = []
    done = asyncio.Event()

    async def listen(ws):
        while True:
            text = await ws.recv()
            if '"type":"push"' not in text or '"targetSpec":"#' not in text:
                continue
            now = time.monotonic()
            stamp = json.loads(text)["ciphertext"].split(":", 1)[0]
            latencies.append(now - sent_at[stamp])
            if len(latencies) >= expected:
                done.set()

    listeners = [asyncio.create_task(listen(ws)) for ws in receivers]
    started = time.monotonic()
    await asyncio.gather(*(send_many(ws, args.msgs, f"s{i}", sent_at, args.rate) for i, ws in enumerate(senders)))
    try:
        await asyncio.wait_for(done.wait(), args.timeout)
    except TimeoutError:
        pass
    elapsed = time.monotonic() - started
    for task in listeners:
        task.cancel()
    for ws in peers:
        await ws.close()
    return {"scenario": "topic fanout", "members": len(peers), "senders": args.senders, "messages": args.senders * args.msgs,
            "deliveries": len(latencies), "expected": expected, "seconds": round(elapsed, 2),
            "deliveries_per_s": round(len(latencies) / elapsed), **percentiles(latencies)}


async def history(args) -> dict:
    roster = load_roster(args.roster)
    member = roster.members[0]
    ws = await open_peer(args.url, roster.mesh_id, member, "filler")
    started = time.monotonic()
    ids = await send_many(ws, args.fill, "h")
    filled = time.monotonic() - started
    rng = random.Random(1)
    timings = []
    for n in range(args.reads):
        before = ids[rng.randrange(200, len(ids))]
        asked = time.monotonic()
        await ws.send(json.dumps({"type": "topic_history", "topic": "general", "limit": 200, "beforeId": before,
                                  "_reqId": f"r{n}"}))
        while True:
            frame = json.loads(await ws.recv())
            if frame.get("_reqId") == f"r{n}":
                break
        timings.append(time.monotonic() - asked)
        assert len(frame["messages"]) == 200, frame.get("message")
    await ws.close()
    return {"scenario": "topic history", "messages_in_topic": args.fill, "fill_s": round(filled, 1), "reads": args.reads,
            "page": 200, "mean_ms": round(statistics.mean(timings) * 1000, 1), **percentiles(timings)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.topics", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("scenario", choices=("fanout", "history"))
    parser.add_argument("--roster", required=True)
    parser.add_argument("--url", required=True)
    parser.add_argument("--senders", type=int, default=5)
    parser.add_argument("--msgs", type=int, default=200)
    parser.add_argument("--rate", type=float, default=0, help="fanout: messages/s per sender (default: flat out)")
    parser.add_argument("--fill", type=int, default=100_000)
    parser.add_argument("--reads", type=int, default=200)
    parser.add_argument("--timeout", type=float, default=120.0)
    args = parser.parse_args(argv)
    result = asyncio.run(fanout(args) if args.scenario == "fanout" else history(args))
    print(json.dumps(result))
    complete = result.get("deliveries", 0) == result.get("expected", 0)
    return 0 if complete else 1


if __name__ == "__main__":
    sys.exit(main())
