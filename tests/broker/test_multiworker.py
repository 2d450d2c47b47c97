"""Several real broker processes on Postgres + Redis form one broker (docs/broker.md).

Each test gets its own Postgres database (created and dropped here, so pytest-django's test DB is never
touched) and its own channel-layer prefix.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import signal
import time

import httpx
import pytest

from tests.support.e2e import E2EPeer, RosterMember
from tests.support.servers import (
    BrokerWorker,
    extra_redis_server,
    free_port,
    manage,
    migrate,
    server_env,
    throwaway_postgres_database,
)

DATABASE_URL = os.environ.get("DATABASE_URL", "")
REDIS_URL = os.environ.get("REDIS_URL", "")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not (DATABASE_URL.startswith("postgres") and REDIS_URL),
        reason="multi-worker tests need DATABASE_URL (Postgres) and REDIS_URL: workers share both",
    ),
]


@pytest.fixture
def e2e_database():
    with throwaway_postgres_database(DATABASE_URL, "claudemesh_e2e") as url:
        yield url


@pytest.fixture(params=["one Redis", "layer sharded over two Redis servers"])
def channel_layer_urls(request, tmp_path):
    """Every multi-worker test runs twice: on one Redis, and with the channel layer sharded over two (channels-redis
    `hosts`; the cache and rate limits stay on the first)."""
    if request.param == "one Redis":
        yield REDIS_URL
        return
    with extra_redis_server(tmp_path) as second:
        yield f"{REDIS_URL},{second}"


@pytest.fixture
def cluster(tmp_path, e2e_database, channel_layer_urls):
    """Two workers sharing one database and one Redis, plus a roster of members."""
    ports = [free_port(), free_port()]
    started: list[BrokerWorker] = []

    def env_for(port: int, **extra: str) -> dict[str, str]:
        settings = {
            "DATABASE_URL": e2e_database, "REDIS_URL": REDIS_URL, "CHANNEL_LAYER_REDIS_URLS": channel_layer_urls,
            "CHANNEL_LAYER_PREFIX": f"e2e{secrets.token_hex(3)}",
            "BROKER_PRESENCE_LEASE_SECONDS": "4", "BROKER_HEARTBEAT_SECONDS": "1", "BROKER_SWEEP_SECONDS": "0.5",
            "BROKER_SEND_RATE_BURST": "100000", "MAX_CONNECTIONS_PER_MESH": "1000",
        }
        return server_env(tmp_path, port, **{**settings, **extra})

    prefix = f"e2e{secrets.token_hex(3)}"

    def start(extra: dict[str, str] | None = None) -> list[BrokerWorker]:
        for index, port in enumerate(ports):
            env = env_for(port, CHANNEL_LAYER_PREFIX=prefix, **(extra or {}))
            if index == 0:
                migrate(env)
            worker = BrokerWorker(port=port, env=env, log_path=tmp_path / f"worker{index}.log").start()
            started.append(worker)
        return started

    start.workers = started  # for tests that stop and restart them

    def roster(peers: int) -> list[RosterMember]:
        out = tmp_path / "roster.json"
        manage(env_for(ports[0], CHANNEL_LAYER_PREFIX=prefix), "bench_roster", "--peers", str(peers), "--out", str(out))
        data = json.loads(out.read_text())
        return [RosterMember(data["meshId"], m["memberId"], m["pubkey"], m["secretKey"]) for m in data["members"]]

    yield start, roster
    for worker in started:
        worker.stop()
    for worker in started:
        if worker.log_path and "Traceback" in worker.log_text():
            print(f"--- {worker.log_path.name} ---\n{worker.log_text()[-4000:]}")


async def wait_until(check, timeout: float = 15.0, interval: float = 0.2):
    deadline = time.monotonic() + timeout
    while True:
        result = await check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(interval)


async def send(peer: E2EPeer, target: str, text: str, **extra) -> dict:
    send_id = f"{peer.session_id}-{text}"
    await peer.send({"type": "send", "id": send_id, "targetSpec": target, "nonce": "n", "ciphertext": text, **extra})
    return await peer.expect(lambda f: f.get("type") == "ack" and f.get("id") == send_id)


async def test_cross_worker_routing_presence_and_events(cluster):
    start, roster = cluster
    w1, w2 = start()
    alice, bob, carol, dave = roster(4)
    a = E2EPeer(alice, w1.ws_url)
    b = E2EPeer(bob, w2.ws_url)
    c = E2EPeer(carol, w2.ws_url, groups=[{"name": "eng/backend"}])
    await a.connect()
    await b.connect()
    await c.connect()
    joined = await a.expect(lambda f: f.get("event") == "peer_joined" and f["eventData"]["pubkey"] == carol.pubkey)
    assert joined["eventData"]["groups"] == [{"name": "eng/backend"}]
    peers = (await a.request({"type": "list_peers"}, "peers_list"))["peers"]
    assert {p["pubkey"] for p in peers} == {alice.pubkey, bob.pubkey, carol.pubkey}

    dm = await send(a, bob.pubkey, "dm-across")
    assert dm["queued"] is True
    push = await b.expect(lambda f: f.get("messageId") == dm["messageId"])
    assert push["ciphertext"] == "dm-across" and push["senderPubkey"] == alice.pubkey
    group = await send(a, "@eng", "to-eng")
    await c.expect(lambda f: f.get("messageId") == group["messageId"])
    everyone = await send(c, "*", "to-all")
    await a.expect(lambda f: f.get("messageId") == everyone["messageId"])
    await b.expect(lambda f: f.get("messageId") == everyone["messageId"])

    # System events cross workers both ways.
    d = E2EPeer(dave, w1.ws_url)
    await d.connect()
    await b.expect(lambda f: f.get("event") == "peer_joined" and f["eventData"]["pubkey"] == dave.pubkey)
    await d.send({"type": "set_visible", "visible": False})
    await c.expect(lambda f: f.get("event") == "peer_hidden")
    await d.close()
    await c.expect(lambda f: f.get("event") == "peer_left" and f["eventData"]["pubkey"] == dave.pubkey)

    # One sessionId is unique across workers: the newer hello evicts the older socket on the other worker.
    a2 = E2EPeer(alice, w2.ws_url, session_id=a.session_id)
    await a2.connect()
    await asyncio.wait_for(a.closed.wait(), 10)
    assert a.close_code == 1000
    # An offline member's DM waits in the database and arrives on its next hello, on any worker.
    later = await send(b, dave.pubkey, "for-dave")
    d2 = E2EPeer(dave, w2.ws_url)
    await d2.connect()
    await d2.expect(lambda f: f.get("messageId") == later["messageId"])
    for peer in (a2, b, c, d2):
        await peer.close()


async def test_worker_killed_mid_traffic(cluster):
    start, roster = cluster
    w1, w2 = start()
    members = roster(7)
    receivers = [E2EPeer(m, w1.ws_url) for m in members[:3]]
    senders = [E2EPeer(m, w2.ws_url) for m in members[3:6]]
    bystander = E2EPeer(members[6], w1.ws_url)  # dies with its worker and never comes back
    for peer in receivers + senders + [bystander]:
        await peer.connect()
    acked: dict[str, set[str]] = {r.member.pubkey: set() for r in receivers}
    stop = asyncio.Event()

    async def pump(sender: E2EPeer, index: int) -> None:
        n = 0
        while not stop.is_set():
            target = receivers[(index + n) % len(receivers)].member.pubkey
            send_id = f"{index}-{n}"
            await sender.send({"type": "send", "id": send_id, "targetSpec": target, "nonce": "n", "ciphertext": send_id, "clientMessageId": send_id})
            ack = await sender.expect(lambda f, sid=send_id: f.get("type") == "ack" and f.get("id") == sid, timeout=20)
            if ack["queued"]:
                acked[target].add(ack["messageId"])
            n += 1
            await asyncio.sleep(0.01)

    pumps = [asyncio.ensure_future(pump(s, i)) for i, s in enumerate(senders)]
    await asyncio.sleep(1.5)
    killed_at = time.monotonic()
    w1.stop(signal.SIGKILL)
    await asyncio.gather(*(asyncio.wait_for(r.closed.wait(), 10) for r in receivers))
    for receiver in receivers:  # reconnect to the surviving worker with the same session
        await receiver.connect(w2.ws_url)
    await asyncio.sleep(1.5)
    stop.set()
    await asyncio.gather(*pumps)
    assert sum(len(ids) for ids in acked.values()) > 30

    async def everything_arrived():
        return all(acked[r.member.pubkey] <= {mid for _, mid in r.pushes} for r in receivers)

    await wait_until(everything_arrived, timeout=20)
    for receiver in receivers:
        counts: dict[str, list[float]] = {}
        for at, message_id in receiver.pushes:
            counts.setdefault(message_id, []).append(at)
        assert set(counts) == acked[receiver.member.pubkey]  # nothing lost, nothing foreign
        # Exactly once, except a push the dead worker wrote whose push_ack died with it.
        repeats = [mid for mid, times in counts.items() if len(times) > 1]
        assert all(counts[mid][0] <= killed_at + 0.5 for mid in repeats), repeats

    # No ghost peers once the dead worker's leases ran out.
    async def no_ghosts():
        peers = (await senders[0].request({"type": "list_peers"}, "peers_list"))["peers"]
        return len(peers) == 6 and peers

    peers = await wait_until(no_ghosts, timeout=15)
    assert {p["sessionId"] for p in peers} == {p.session_id for p in receivers + senders}
    left = await senders[0].expect(lambda f: f.get("event") == "peer_left", timeout=10)
    assert left["eventData"]["pubkey"] == bystander.member.pubkey
    async with httpx.AsyncClient() as http:
        ready = await http.get(f"{w2.http_url}/health/ready")
        assert ready.status_code == 200
    for peer in receivers + senders:
        await peer.close()


async def test_layer_capacity_flood_loses_nothing(cluster):
    """With a tiny channels-redis capacity the layer drops pushes; the DB-backed sweeps still deliver everything."""
    start, roster = cluster
    w1, w2 = start({"CHANNEL_LAYER_CAPACITY": "1", "CHANNEL_LAYER_EXPIRY": "1", "BROKER_RETRANSMIT_SECONDS": "1"})
    members = roster(8)
    receivers = [E2EPeer(m, w2.ws_url) for m in members[:4]]
    senders = [E2EPeer(m, w1.ws_url) for m in members[4:]]
    for peer in receivers + senders:
        await peer.connect()
    expected: dict[str, set[str]] = {r.member.pubkey: set() for r in receivers}

    async def flood(sender: E2EPeer, index: int) -> None:
        # Three waves, each acknowledged before the next: at least three send batches, so at least three layer
        # messages to the frozen worker however many sends one batch takes (capacity 1 overflows on the second).
        for wave in range(3):
            numbers = range(wave * 20, wave * 20 + 20)
            for n in numbers:
                target = receivers[n % len(receivers)].member.pubkey
                send_id = f"f{index}-{n}"
                await sender.send(
                    {"type": "send", "id": send_id, "targetSpec": target, "nonce": "n", "ciphertext": send_id}
                )
            for n in numbers:
                send_id = f"f{index}-{n}"
                ack = await sender.expect(
                    lambda f, sid=send_id: f.get("type") == "ack" and f.get("id") == sid, timeout=20
                )
                assert ack["queued"] is True
                expected[receivers[n % len(receivers)].member.pubkey].add(ack["messageId"])

    # Freeze the receivers' worker: doorbells pile up past capacity (ChannelFull) or expire in Redis, so
    # none of them will ever ring. Only the database-backed sweep can deliver now.
    w2.proc.send_signal(signal.SIGSTOP)
    try:
        await asyncio.gather(*(flood(s, i) for i, s in enumerate(senders)))
        await asyncio.sleep(1.2)  # past CHANNEL_LAYER_EXPIRY
    finally:
        w2.proc.send_signal(signal.SIGCONT)

    async def all_delivered():
        return all(expected[r.member.pubkey] <= {mid for _, mid in r.pushes} for r in receivers)

    await wait_until(all_delivered, timeout=30)
    async with httpx.AsyncClient() as http:
        metrics = (await http.get(f"{w1.http_url}/metrics")).text
    dropped = [line for line in metrics.splitlines() if line.startswith("broker_doorbells_dropped_total")]
    assert dropped and float(dropped[0].split()[-1]) > 0, "the flood should have overflowed the layer"
    for peer in receivers + senders:
        await peer.close()


async def test_a_dead_workers_sessions_are_retired_within_seconds(cluster):
    """Given a 45 s lease and bob on worker 1, when worker 1 is killed and bob comes back on worker 2 with a new
    sessionId, then within seconds list_peers shows only bob's new session and every DM to bob sent meanwhile
    reaches him promptly: nothing waits for the dead worker's lease."""
    start, roster = cluster
    w1, w2 = start({"BROKER_PRESENCE_LEASE_SECONDS": "45", "BROKER_HEARTBEAT_SECONDS": "10"})
    alice, bob = roster(2)
    a = E2EPeer(alice, w2.ws_url)
    ghost = E2EPeer(bob, w1.ws_url)
    await a.connect()
    await ghost.connect()
    w1.stop(signal.SIGKILL)
    killed_at = time.monotonic()
    b = E2EPeer(bob, w2.ws_url)  # a new process: a new sessionId
    await b.connect()
    sent_at: dict[str, float] = {}
    for n in range(40):
        ack = await send(a, bob.pubkey, f"dm-{n}")
        sent_at[ack["messageId"]] = time.monotonic()
        await asyncio.sleep(0.2)

    async def all_arrived():
        return set(sent_at) <= {mid for _, mid in b.pushes}

    await wait_until(all_arrived, timeout=15)
    arrived = {mid: at for at, mid in b.pushes if mid in sent_at}
    late = [mid for mid, at in arrived.items() if at - max(sent_at[mid], killed_at + 8) > 2]
    assert late == [], f"{len(late)} DMs waited for the dead worker"

    async def ghost_gone():
        peers = (await a.request({"type": "list_peers"}, "peers_list"))["peers"]
        return {p["sessionId"] for p in peers} == {a.session_id, b.session_id}

    await wait_until(ghost_gone, timeout=3)
    print(f"dead worker: its session gone from list_peers {time.monotonic() - killed_at:.1f} s after kill -9; "
          f"{len(sent_at)} DMs sent meanwhile, none more than 2 s late")
    assert time.monotonic() - killed_at < 15
    await a.close()
    await b.close()
