"""A flooding member against a real server process: with admission at the socket (a socket with too many
unanswered sends is not read), fair batches and fan-out-weighted limits, a victim pair on the same worker keeps
its latency while the flood runs and right after it, and a broadcast flood leaves a bounded number of rows for
the members who are offline."""

from __future__ import annotations

import asyncio
import json
import os
import time

import pytest
import websockets

from protocol.hello import hello_frame
from tests.support.e2e import E2EPeer, RosterMember
from tests.support.servers import ServerProcess, free_port, manage, migrate, server_env, throwaway_postgres_database

DATABASE_URL = os.environ.get("DATABASE_URL", "")
REDIS_URL = os.environ.get("REDIS_URL", "")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not (DATABASE_URL.startswith("postgres") and REDIS_URL), reason="a deployment: Postgres + Redis"),
]
OFFLINE = 25
CAP = 200
STARVED = 3.0  # seconds: a victim's p99 beyond this means the flood starved it
LIVE_SQL = """
from broker.models import Delivery
from django.db.models import Count, Max
print(Delivery.objects.filter(state=0).values("recipient_member_id").annotate(n=Count("id")).aggregate(Max("n"))["n__max"] or 0)
"""


@pytest.fixture
def server(tmp_path):
    with throwaway_postgres_database(DATABASE_URL, "claudemesh_flood") as database:
        yield from _serve(tmp_path, database)


def _serve(tmp_path, database):
    port = free_port()
    env = server_env(  # the default send limits stay on, shared in Redis
        tmp_path, port, DATABASE_URL=database, REDIS_URL=REDIS_URL, CHANNEL_LAYER_PREFIX=f"flood{port}",
        BROKER_MAX_QUEUED_PER_RECIPIENT=str(CAP),
    )
    migrate(env)
    roster_path = tmp_path / "roster.json"
    manage(env, "bench_roster", "--peers", str(4 + OFFLINE), "--out", str(roster_path))
    data = json.loads(roster_path.read_text())
    members = [RosterMember(data["meshId"], m["memberId"], m["pubkey"], m["secretKey"]) for m in data["members"]]
    process = ServerProcess(port=port, env=env, log_path=tmp_path / "server.log").start()
    try:
        yield process, env, members
    finally:
        process.stop()


def p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]


async def victim_round_trips(alice: E2EPeer, bob: E2EPeer, target: str, count: int, tag: str) -> list[float]:
    latencies = []
    for n in range(count):
        sent = time.monotonic()
        await alice.send({"type": "send", "id": f"{tag}{n}", "targetSpec": target, "nonce": "n", "ciphertext": "v"})
        ack = await alice.expect(lambda f, i=f"{tag}{n}": f.get("type") == "ack" and f.get("id") == i, timeout=30)
        while ack["messageId"] not in {mid for _, mid in bob.pushes}:
            await asyncio.sleep(0.002)
        latencies.append(time.monotonic() - sent)
        await asyncio.sleep(0.02)
    return latencies


async def flood(url: str, member: RosterMember, target: str, seconds: float) -> int:
    """Send as fast as the socket takes them, never waiting for an ack; returns how many were written."""
    async with websockets.connect(url, max_size=2**22, ping_interval=None) as ws:
        await ws.send(json.dumps(hello_frame(
            mesh_id=member.mesh_id, member_id=member.member_id, pubkey=member.pubkey, secret_hex=member.secret_key,
            session_id="flooder", pid=1, cwd="/flood",
        )))
        reader = asyncio.ensure_future(_discard(ws))
        written, deadline = 0, time.monotonic() + seconds
        while time.monotonic() < deadline:
            await ws.send(json.dumps({"type": "send", "targetSpec": target, "nonce": "n", "ciphertext": "x" * 200}))
            written += 1
        reader.cancel()
        return written


async def _discard(ws) -> None:
    async for _ in ws:
        pass


async def test_a_flooding_member_costs_its_neighbours_little(server):
    process, env, (flooder, alice_m, bob_m, carol_m, *_offline) = server
    alice, bob, carol = (E2EPeer(m, process.ws_url) for m in (alice_m, bob_m, carol_m))
    for peer in (alice, bob, carol):
        await peer.connect()
    quiet = await victim_round_trips(alice, bob, bob_m.pubkey, 50, "quiet")

    # When one member floods DMs at carol, then broadcasts, the victims' round trips stay short
    dm_flood = asyncio.ensure_future(flood(process.ws_url, flooder, carol_m.pubkey, 8))
    await asyncio.sleep(1)
    during_dm = await victim_round_trips(alice, bob, bob_m.pubkey, 100, "dm")
    written = await dm_flood
    cast_flood = asyncio.ensure_future(flood(process.ws_url, flooder, "*", 6))
    await asyncio.sleep(1)
    during_cast = await victim_round_trips(alice, bob, bob_m.pubkey, 100, "cast")
    await cast_flood
    after = await victim_round_trips(alice, bob, bob_m.pubkey, 30, "after")  # the worker is not still busy
    print(f"flood: {written} DMs written in 8 s; victim send→push p99 quiet {p99(quiet) * 1000:.0f} ms, "
          f"DM flood {p99(during_dm) * 1000:.0f} ms, broadcast flood {p99(during_cast) * 1000:.0f} ms, "
          f"after {p99(after) * 1000:.0f} ms")
    # Not a speed target (docs/reliability.md has the figures): a starvation bound with room for a busy CI machine.
    # Without admission and fair batches the victims' p99 was 6.5–10.5 s; with them, 0.2–1.3 s.
    assert p99(during_dm) < STARVED and p99(during_cast) < STARVED and p99(after) < STARVED

    # And what waits for the 25 offline members is capped per sender
    most_waiting = int(manage(env, "shell", "-c", LIVE_SQL).strip().splitlines()[-1])
    assert 0 < most_waiting <= CAP + 5  # alice's and bob's victim DMs were delivered; the flooder's are capped
    for peer in (alice, bob, carol):
        await peer.close()
