"""Coordination benchmarks against a running broker (see `bench.run_server`), over the wire like real peers, with
real sealed records (signed with the roster members' keys, checked by the broker).

    python -m bench.coordination state  --roster R --url U [--writes 300] [--rate 20]
    python -m bench.coordination recall --roster R --url U --database-url D [--fill 100000] [--queries 200]
    python -m bench.coordination claims --roster R --url U [--agents 50] [--tasks 500]

state: every roster member connects; one writes `--writes` sealed values (`set_state` with `confirm`) at `--rate` a
second; every other connection gets each `state_change`. Reports set→state_change latency over every delivery.
recall: `--fill` sealed memories (20 words each from a 5,000-word vocabulary, with their blind tokens) are written
straight into the database of `--database-url` (over the wire it would only measure the fill), then one member
sends `--queries` two-word `recall`s by blind tokens. Reports the recall latency.
claims: `--tasks` tasks are created, then `--agents` connections work the queue: each picks an open task and claims
it, picking another when it loses the race. Reports claims/s and attempts/s, and checks that every task was won
exactly once.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import random
import sys
import time

from bench.roster import load_roster
from bench.topics import open_peer, percentiles
from protocol.crypto import SigningKeypair
from protocol.records import blind_tokens, seal_record, search_key

KEY = hashlib.sha256(b"claudemesh bench scope key").digest()  # the same in every run (the fill and the queries)
VOCABULARY = [f"w{n:04d}" for n in range(5000)]


def sealed(mesh_id: str, member, value, *, kind: str, name: str | None) -> dict:
    author = SigningKeypair.from_secret_hex(member.secret_key)
    return seal_record(value, kind=kind, name=name, mesh_id=mesh_id, epoch=1, key=KEY, author=author).as_wire()


async def reply_to(ws, req_id: str) -> dict:
    while True:
        frame = json.loads(await ws.recv())
        if frame.get("_reqId") == req_id:
            return frame


async def state(args) -> dict:
    roster = load_roster(args.roster)
    members = list(roster.members)
    peers = [await open_peer(args.url, roster.mesh_id, m, f"peer-{i}") for i, m in enumerate(members)]
    writer, receivers = peers[0], peers[1:]
    run = f"{time.time_ns() % 10**9}"  # fresh keys each run: a key's version would carry over from the last one
    keys = [f"bench-{run}-{n}" for n in range(args.writes)]
    records = [sealed(roster.mesh_id, members[0], {"n": n, "text": "x" * 200}, kind="state", name=key)
               for n, key in enumerate(keys)]
    expected = args.writes * len(receivers)
    sent_at: dict[str, float] = {}  # key → when it was sent
    latencies: list[float] = []
    done = asyncio.Event()

    async def listen(ws):
        while True:
            text = await ws.recv()
            if '"type":"state_change"' not in text:
                continue
            now = time.monotonic()
            sent = sent_at.get(json.loads(text)["key"])
            if sent is not None:
                latencies.append(now - sent)
            if len(latencies) >= expected:
                done.set()

    async def acks():
        for _ in range(args.writes):
            frame = json.loads(await writer.recv())
            while frame.get("type") != "state_stored":
                frame = json.loads(await writer.recv())

    listeners = [asyncio.create_task(listen(ws)) for ws in receivers]
    ack_task = asyncio.create_task(acks())
    started = time.monotonic()
    for n, record in enumerate(records):
        await asyncio.sleep(max(0.0, started + n / args.rate - time.monotonic()))
        sent_at[keys[n]] = time.monotonic()
        await writer.send(json.dumps({"type": "set_state", "key": keys[n], "sealed": record, "confirm": True,
                                      "_reqId": f"s{n}"}))
    try:
        await asyncio.wait_for(done.wait(), args.timeout)
    except TimeoutError:
        pass
    elapsed = time.monotonic() - started
    for task in [*listeners, ack_task]:
        task.cancel()
    for ws in peers:
        await ws.close()
    return {"scenario": "set_state fan-out", "connections": len(peers), "writes": args.writes, "rate": args.rate,
            "deliveries": len(latencies), "expected": expected, "seconds": round(elapsed, 2), **percentiles(latencies)}


def seed_memories(database_url: str, mesh_id: str, member, count: int) -> float:
    """Sealed memories with their tokens, bulk-inserted through Django (the fill, not the benchmark)."""
    os.environ["DATABASE_URL"] = database_url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "claudemesh.settings")
    import django

    django.setup()
    from meshes.models import Memory, MemoryToken

    rng = random.Random(7)
    token_key = search_key(KEY)
    started = time.monotonic()
    weights = [1 / (rank + 1) for rank in range(len(VOCABULARY))]  # Zipf: a few words are common, most rare
    for start in range(0, count, 2000):
        memories, tokens = [], []
        for _ in range(min(2000, count - start)):
            text = " ".join(rng.choices(VOCABULARY, weights, k=20))
            memory = Memory(mesh_id=mesh_id, sealed=sealed(mesh_id, member, {"content": text, "tags": []},
                                                            kind="memory", name=None), remembered_by_name="bench")
            memories.append(memory)
            tokens.extend(MemoryToken(memory=memory, mesh_id=mesh_id, token=t) for t in blind_tokens(text, token_key))
        Memory.objects.bulk_create(memories)
        MemoryToken.objects.bulk_create(tokens, batch_size=10_000)
    return time.monotonic() - started


async def recall(args) -> dict:
    roster = load_roster(args.roster)
    member = roster.members[0]
    filled = await asyncio.to_thread(seed_memories, args.database_url, roster.mesh_id, member, args.fill)
    ws = await open_peer(args.url, roster.mesh_id, member, "recaller")
    rng = random.Random(3)
    token_key = search_key(KEY)
    timings, hits = [], []
    for n in range(args.queries):
        words = " ".join(rng.sample(VOCABULARY[:2000], 2))
        asked = time.monotonic()
        await ws.send(json.dumps({"type": "recall", "tokens": blind_tokens(words, token_key), "_reqId": f"q{n}"}))
        frame = await reply_to(ws, f"q{n}")
        timings.append(time.monotonic() - asked)
        hits.append(len(frame.get("memories") or []))
    await ws.close()
    return {"scenario": "recall by blind tokens", "memories": args.fill, "fill_s": round(filled, 1),
            "queries": args.queries, "mean_hits": round(sum(hits) / len(hits), 1), **percentiles(timings)}


async def claims(args) -> dict:
    roster = load_roster(args.roster)
    members = list(roster.members)[: args.agents]
    agents = [await open_peer(args.url, roster.mesh_id, m, f"agent-{i}") for i, m in enumerate(members)]
    creator = agents[0]
    ids = []
    for n in range(args.tasks):
        title = sealed(roster.mesh_id, members[0], f"task {n}", kind="task", name=None)
        await creator.send(json.dumps({"type": "create_task", "sealed": title, "_reqId": f"c{n}"}))
        ids.append((await reply_to(creator, f"c{n}"))["id"])
    won: dict[str, int] = {}
    open_ids = set(ids)  # what a `list_tasks --status open` would show an agent right now
    attempts = 0

    async def race(index: int, ws):
        """An agent's loop: pick an open task, claim it; on losing the race pick another."""
        nonlocal attempts
        rng = random.Random(index)
        while open_ids:
            task_id = rng.choice(sorted(open_ids))
            req = f"k{index}-{attempts}"
            await ws.send(json.dumps({"type": "claim_task", "taskId": task_id, "_reqId": req}))
            frame = await reply_to(ws, req)
            attempts += 1
            if frame["type"] == "task_list":
                won[task_id] = won.get(task_id, 0) + 1
            elif frame.get("code") != "task_not_claimable":
                raise RuntimeError(frame)
            open_ids.discard(task_id)

    started = time.monotonic()
    await asyncio.gather(*(race(i, ws) for i, ws in enumerate(agents)))
    elapsed = time.monotonic() - started
    for ws in agents:
        await ws.close()
    exactly_once = sorted(won) == sorted(ids) and set(won.values()) == {1}
    return {"scenario": "task claim race", "agents": len(agents), "tasks": args.tasks, "attempts": attempts,
            "seconds": round(elapsed, 2), "claims_per_s": round(len(won) / elapsed, 1),
            "attempts_per_s": round(attempts / elapsed), "exactly_once": exactly_once,
            "deliveries": int(exactly_once), "expected": 1}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.coordination", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("scenario", choices=("state", "recall", "claims"))
    parser.add_argument("--roster", required=True)
    parser.add_argument("--url", required=True)
    parser.add_argument("--writes", type=int, default=300)
    parser.add_argument("--rate", type=float, default=20.0)
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL", ""))
    parser.add_argument("--fill", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--agents", type=int, default=50)
    parser.add_argument("--tasks", type=int, default=500)
    parser.add_argument("--timeout", type=float, default=120.0)
    args = parser.parse_args(argv)
    scenario = {"state": state, "recall": recall, "claims": claims}[args.scenario]
    result = asyncio.run(scenario(args))
    print(json.dumps(result))
    return 0 if result.get("deliveries", 1) == result.get("expected", 1) else 1


if __name__ == "__main__":
    sys.exit(main())
