"""Faults: two broker workers on Postgres + Redis under steady traffic (the default send limits on) survive a
Redis restart and a Postgres stop/start without being restarted themselves, then a kill -9 of one worker whose
peers come back on the other with new sessionIds.

What is checked (docs/reliability.md):
- `/health/ready` answers 503 while a dependency is down (`channel_layer_down` / `db_down`) and 200 after;
- every `send` gets an `ack` (queued, or refused with an error text) or sees its socket close: none hangs;
- every acknowledged message is delivered afterwards (deliveryAck peers, cross-worker): lost must be 0;
- the worker processes never exit, and new sends are acknowledged after each outage.

This test stops the Postgres cluster and the Redis server that DATABASE_URL and REDIS_URL name for a few seconds: run it alone (`-m slow -k faults`);
it always restores both services in `finally`. It uses its own database (created and dropped here), never
pytest-django's.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import signal
import subprocess
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

import httpx
import pytest
import websockets

from protocol.hello import hello_frame
from tests.support.acceptance import record_results
from tests.support.servers import BrokerWorker, free_port, manage, migrate, server_env, throwaway_postgres_database

DATABASE_URL = os.environ.get("DATABASE_URL", "")
REDIS_URL = os.environ.get("REDIS_URL", "")
# The services this suite stops and starts are the ones DATABASE_URL and REDIS_URL name (local ones only).
PG_HOST, PG_PORT = urlparse(DATABASE_URL).hostname or "127.0.0.1", urlparse(DATABASE_URL).port or 5432
REDIS_HOST, REDIS_PORT = urlparse(REDIS_URL).hostname or "127.0.0.1", urlparse(REDIS_URL).port or 6379
LOCAL = {"127.0.0.1", "localhost", "::1"}
OUTAGE_SECONDS = 4.0

pytestmark = [
    pytest.mark.slow,
    pytest.mark.faults,
    pytest.mark.skipif(
        not (DATABASE_URL.startswith("postgres") and REDIS_URL),
        reason="the fault suite needs DATABASE_URL (Postgres) and REDIS_URL: it restarts both under two workers",
    ),
]


# --- the services ------------------------------------------------------------------------------------------


def pg_cluster_of_port(port: int) -> tuple[str, str]:
    """The local cluster (version, name) listening on `port`: the one DATABASE_URL names."""
    listing = subprocess.run(["pg_lsclusters", "--no-header"], capture_output=True, text=True, check=True, timeout=30)
    for line in listing.stdout.splitlines():
        version, name, cluster_port, *_ = line.split()
        if int(cluster_port) == port:
            return version, name
    raise AssertionError(f"no local Postgres cluster listens on port {port} (from DATABASE_URL)")


def pg_cluster(action: str) -> None:
    version, name = pg_cluster_of_port(PG_PORT)
    extra = ["-m", "fast"] if action == "stop" else []
    subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", version, name, action, *extra], check=True,
                   capture_output=True, timeout=60)


def pg_up() -> bool:
    return subprocess.run(["pg_isready", "-h", PG_HOST, "-p", str(PG_PORT), "-q"], timeout=10).returncode == 0


def redis_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["redis-cli", "-h", REDIS_HOST, "-p", str(REDIS_PORT), *args], capture_output=True, text=True,
                          timeout=30)


def redis_up() -> bool:
    return redis_cli("ping").stdout.strip() == "PONG"


def wait_for(check, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.2)
    return False


def redis_start() -> None:
    Path("/var/lib/redis").mkdir(parents=True, exist_ok=True)
    Path("/var/log/redis").mkdir(parents=True, exist_ok=True)
    subprocess.run(["redis-server", "--daemonize", "yes", "--bind", REDIS_HOST, "--port", str(REDIS_PORT), "--save", "",
                    "--appendonly", "no", "--dir", "/var/lib/redis", "--logfile", f"/var/log/redis/ci-{REDIS_PORT}.log"],
                   check=True, capture_output=True, timeout=30)
    assert wait_for(redis_up, 30), "redis did not come back"


def restore_services() -> None:
    """Whatever happened, leave Postgres and Redis running for everybody else on this machine."""
    if not pg_up():
        try:
            pg_cluster("start")
        except subprocess.CalledProcessError:
            pass  # already starting
        wait_for(pg_up, 60)
    if not redis_up():
        redis_start()


@pytest.fixture
def fault_database():
    assert PG_HOST in LOCAL and REDIS_HOST in LOCAL, "the fault suite stops and starts local services only"
    from channels.layers import channel_layers
    from django.db import connections

    try:
        with throwaway_postgres_database(DATABASE_URL, "claudemesh_faults") as url:
            try:
                yield url
            finally:
                restore_services()  # the database can only be dropped once Postgres is back
    finally:
        # Postgres went down under this pytest process too: drop its dead connections (and the Redis layer's) so
        # tests that run after this one in the same session reconnect instead of failing on a closed socket.
        connections.close_all()
        channel_layers.backends.pop("default", None)


# --- a peer that keeps reconnecting and counts every outcome -------------------------------------------------


@dataclass
class Member:
    mesh_id: str
    member_id: str
    pubkey: str
    secret_key: str


@dataclass
class FaultPeer:
    member: Member
    url: str
    session_id: str = field(default_factory=lambda: f"fault-{uuid.uuid4().hex[:10]}")
    received: set[str] = field(default_factory=set)
    acked: dict[str, str] = field(default_factory=dict)  # messageId -> target pubkey
    outcomes: Counter = field(default_factory=Counter)
    errors: Counter = field(default_factory=Counter)
    connected: asyncio.Event = field(default_factory=asyncio.Event)
    stopping: bool = False
    _ws: object = None
    _waiting: dict[str, asyncio.Future] = field(default_factory=dict)

    async def run(self) -> None:
        while not self.stopping:
            try:
                await self._session()
            except Exception as exc:  # noqa: BLE001 - every way a connection can end leads to a reconnect
                self.errors[f"connection: {type(exc).__name__}"] += 1
            self.connected.clear()
            for future in self._waiting.values():
                if not future.done():
                    future.set_result(None)  # the socket closed under the send
            self.outcomes["reconnects"] += 1
            await asyncio.sleep(0.3)

    async def _session(self) -> None:
        async with websockets.connect(self.url, open_timeout=5, ping_interval=None, close_timeout=2) as ws:
            self._ws = ws
            await ws.send(json.dumps(hello_frame(
                mesh_id=self.member.mesh_id, member_id=self.member.member_id, pubkey=self.member.pubkey,
                secret_hex=self.member.secret_key, session_id=self.session_id, pid=1, cwd="/faults", deliveryAck=True,
            )))
            first = json.loads(await asyncio.wait_for(ws.recv(), 10))
            while first.get("type") == "push":  # queued pushes may precede the ack
                self._on_push(first)
                first = json.loads(await asyncio.wait_for(ws.recv(), 10))
            if first.get("type") != "hello_ack":
                self.errors[f"hello: {first.get('code')}"] += 1  # a clear refusal (e.g. internal while the DB is down)
                return
            self.connected.set()
            async for raw in ws:
                frame = json.loads(raw)
                if frame.get("type") == "push" and frame.get("subtype") != "system":
                    self._on_push(frame)
                    await ws.send(json.dumps({"type": "push_ack", "messageIds": [frame["messageId"]]}))
                elif frame.get("type") == "ack" and frame.get("id") in self._waiting:
                    self._waiting.pop(frame["id"]).set_result(frame)
                elif frame.get("type") == "error":
                    self.errors[f"error: {frame.get('code')}"] += 1

    def move(self, url: str) -> None:
        """Its worker died: come back on another, as a new process would, with a new sessionId."""
        self.url = url
        self.session_id = f"fault-{uuid.uuid4().hex[:10]}"

    def _on_push(self, frame: dict) -> None:
        self.received.add(frame["messageId"])

    async def send_one(self, target: str) -> None:
        """One send, answered or not: counts queued / refused / closed-under-it / hung (no answer, socket open)."""
        await self.connected.wait()
        ws = self._ws
        send_id = uuid.uuid4().hex[:16]
        future = asyncio.get_running_loop().create_future()
        self._waiting[send_id] = future
        try:
            await ws.send(json.dumps({"type": "send", "id": send_id, "clientMessageId": send_id,
                                      "targetSpec": target, "nonce": "bm9uY2U=", "ciphertext": send_id}))
        except Exception:  # noqa: BLE001
            self._waiting.pop(send_id, None)
            self.outcomes["closed_before_write"] += 1
            return
        try:
            ack = await asyncio.wait_for(asyncio.shield(future), 15)
        except TimeoutError:
            self._waiting.pop(send_id, None)
            self.outcomes["hung"] += 1
            return
        if ack is None:
            self.outcomes["closed_unanswered"] += 1
        elif ack["queued"] is True:
            self.acked[ack["messageId"]] = target
            self.outcomes["queued"] += 1
        else:
            self.outcomes["refused"] += 1
            self.errors[f"ack: {ack.get('error', '')[:60]}"] += 1


async def traffic(sender: FaultPeer, target: FaultPeer, stop: asyncio.Event) -> None:
    while not stop.is_set():
        await sender.send_one(target.member.pubkey)
        await asyncio.sleep(0.05)


@dataclass
class Readiness:
    log: list[tuple[float, int, int, str]] = field(default_factory=list)  # (t, port, status, reason)

    async def poll(self, ports: list[int], stop: asyncio.Event) -> None:
        async with httpx.AsyncClient(timeout=3) as client:
            while not stop.is_set():
                for port in ports:
                    try:
                        response = await client.get(f"http://127.0.0.1:{port}/health/ready")
                        reason = response.json().get("reason", "") if response.status_code != 200 else ""
                        self.log.append((time.monotonic(), port, response.status_code, reason))
                    except Exception as exc:  # noqa: BLE001
                        self.log.append((time.monotonic(), port, 0, type(exc).__name__))
                await asyncio.sleep(0.25)

    def between(self, start: float, end: float) -> list[tuple[float, int, int, str]]:
        return [entry for entry in self.log if start <= entry[0] <= end]

    async def all_ready(self, ports: list[int], since: float, timeout: float) -> float:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            latest = {port: None for port in ports}
            for t, port, status, _ in self.log:
                if t >= since:
                    latest[port] = status
            if all(status == 200 for status in latest.values()):
                return time.monotonic() - since
            await asyncio.sleep(0.25)
        raise AssertionError(f"not ready again after {timeout}s: {self.log[-6:]}")


async def test_redis_restart_and_postgres_stop_lose_no_acknowledged_message(tmp_path, fault_database):
    started = time.monotonic()
    prefix = f"faults{secrets.token_hex(3)}"
    ports = [free_port(), free_port()]
    envs = [server_env(tmp_path, port, DATABASE_URL=fault_database, REDIS_URL=REDIS_URL, CHANNEL_LAYER_PREFIX=prefix,
                       BROKER_PRESENCE_LEASE_SECONDS="20", BROKER_HEARTBEAT_SECONDS="1", BROKER_SWEEP_SECONDS="0.5")
            for port in ports]  # the default send limits stay on: 4 peers at about 20 sends/s each
    migrate(envs[0])
    roster_path = tmp_path / "roster.json"
    manage(envs[0], "bench_roster", "--peers", "4", "--out", str(roster_path))
    roster = json.loads(roster_path.read_text())
    members = [Member(roster["meshId"], m["memberId"], m["pubkey"], m["secretKey"]) for m in roster["members"]]
    workers = [BrokerWorker(port=port, env=env, log_path=tmp_path / f"worker{i}.log").start()
               for i, (port, env) in enumerate(zip(ports, envs, strict=True))]
    # a, c on worker 0; b, d on worker 1; a ring of cross-worker traffic a→b→c→d→a.
    peers = [FaultPeer(member, workers[i % 2].ws_url) for i, member in enumerate(members)]
    stop_traffic, stop_polling = asyncio.Event(), asyncio.Event()
    readiness = Readiness()
    tasks: list[asyncio.Task] = []
    faults: list[dict] = []
    try:
        tasks += [asyncio.ensure_future(peer.run()) for peer in peers]
        for peer in peers:
            await asyncio.wait_for(peer.connected.wait(), 20)
        tasks.append(asyncio.ensure_future(readiness.poll(ports, stop_polling)))
        tasks += [asyncio.ensure_future(traffic(peers[i], peers[(i + 1) % 4], stop_traffic)) for i in range(4)]
        await asyncio.sleep(3)
        assert sum(p.outcomes["queued"] for p in peers) > 10, [p.outcomes for p in peers]

        for name, stop_fn, start_fn, reason in (
            ("redis restart", lambda: redis_cli("shutdown", "nosave"), redis_start, "channel_layer_down"),
            ("postgres stop/start", lambda: pg_cluster("stop"), lambda: (pg_cluster("start"), wait_for(pg_up, 60)),
             "db_down"),
        ):
            # Given steady traffic, when the dependency goes away for a few seconds and comes back, then
            # readiness reports it, every send is answered, and the workers recover by themselves.
            queued_before = sum(p.outcomes["queued"] for p in peers)
            down_at = time.monotonic()
            try:
                await asyncio.to_thread(stop_fn)
                await asyncio.sleep(OUTAGE_SECONDS)
            finally:
                await asyncio.to_thread(start_fn)
            up_at = time.monotonic()
            recovery = await readiness.all_ready(ports, up_at, 60)
            outage = readiness.between(down_at, up_at)
            assert any(status == 503 and why == reason for _, _, status, why in outage), outage
            await asyncio.sleep(3)
            queued_after = sum(p.outcomes["queued"] for p in peers)
            assert queued_after > queued_before, f"no send acknowledged after the {name}"
            assert all(worker.proc.poll() is None for worker in workers), "a worker exited"
            faults.append({"fault": name, "outageSeconds": round(up_at - down_at, 1),
                           "readySecondsAfterRestore": round(recovery, 1),
                           "notReady503Seen": sum(1 for _, _, s, w in outage if s == 503 and w == reason)})

        # When worker 1 is killed (kill -9), its peers come back on worker 0 as new sessions, and traffic goes on.
        queued_before = sum(p.outcomes["queued"] for p in peers)
        killed_at = time.monotonic()
        workers[1].stop(signal.SIGKILL)
        for peer in peers[1::2]:
            peer.move(workers[0].ws_url)
        for peer in peers:
            await asyncio.wait_for(peer.connected.wait(), 20)
        back_after = time.monotonic() - killed_at
        await asyncio.sleep(3)
        assert sum(p.outcomes["queued"] for p in peers) > queued_before, "no send acknowledged after the kill"
        assert workers[0].proc.poll() is None
        faults.append({"fault": "kill -9 of a worker (its peers return with new sessionIds)",
                       "allPeersBackSeconds": round(back_after, 1)})

        stop_traffic.set()
        await asyncio.sleep(0.5)
        acked = {message_id: target for p in peers for message_id, target in p.acked.items()}
        by_pubkey = {p.member.pubkey: p for p in peers}
        deadline = time.monotonic() + 60
        while True:
            missing = [m for m, target in acked.items() if m not in by_pubkey[target].received]
            if not missing or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.5)
        totals = Counter()
        for peer in peers:
            totals.update(peer.outcomes)
        errors = Counter()
        for peer in peers:
            errors.update(peer.errors)
        print("outcomes", dict(totals), "errors", dict(errors), "faults", faults)
        assert totals["hung"] == 0, (totals, errors)
        assert missing == [], f"{len(missing)} acknowledged messages never delivered: {missing[:5]}"
        record_results("faults", "redis_restart_and_postgres_stop", {
            "workers": 2, "faultsSurvived": len(faults), "faults": faults,
            "sendRateLimit": "defaults (2000 burst, 60000/min)", "sendsAcknowledged": len(acked), "messagesDelivered": len(acked) - len(missing),
            "messagesLost": len(missing), "sendsRefusedWithError": totals["refused"],
            "sendsUnansweredBecauseSocketClosed": totals["closed_unanswered"] + totals["closed_before_write"],
            "sendsHung": totals["hung"], "reconnects": totals["reconnects"],
            "errorSamples": dict(errors.most_common(8)), "seconds": round(time.monotonic() - started, 1),
        })
    finally:
        stop_traffic.set()
        stop_polling.set()
        for peer in peers:
            peer.stopping = True
            if peer._ws is not None:
                try:
                    await peer._ws.close()
                except Exception:  # noqa: BLE001, S110
                    pass
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        restore_services()
        for worker in workers:
            worker.stop()
        for worker in workers:
            if "Traceback" in worker.log_text():
                print(f"--- {worker.log_path.name} ---\n{worker.log_text()[-3000:]}")
