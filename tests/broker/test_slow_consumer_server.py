"""A member that never reads its socket, against a real server process (the buffers live there): its outbox is
bounded, it is closed 1008 `slow_consumer`, the worker's memory stays bounded, other senders on the same worker
keep getting prompt acks and pushes, and nothing acknowledged is lost: the slow member gets the rest at its next
hello."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pytest

from protocol.hello import hello_frame
from tests.support.e2e import E2EPeer, RosterMember
from tests.support.rawws import RawSocket
from tests.support.servers import ServerProcess, free_port, manage, migrate, server_env

pytestmark = pytest.mark.slow
OUTBOX_BYTES = 1024 * 1024
CIPHERTEXT = "c" * 4000
STALLED = 3.0  # seconds: a p99 beyond this means the slow socket held others up


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


@pytest.fixture
def server(tmp_path):
    port = free_port()
    env = server_env(
        tmp_path, port, BROKER_OUTBOX_MAX_BYTES=str(OUTBOX_BYTES), BROKER_SEND_RATE_BURST="100000",
        BROKER_MAX_QUEUED_PER_RECIPIENT="100000",
        BROKER_SEND_RATE_PER_MIN="1000000",
    )
    migrate(env)
    roster_path = tmp_path / "roster.json"
    manage(env, "bench_roster", "--peers", "4", "--out", str(roster_path))
    data = json.loads(roster_path.read_text())
    members = [RosterMember(data["meshId"], m["memberId"], m["pubkey"], m["secretKey"]) for m in data["members"]]
    process = ServerProcess(port=port, env=env, log_path=tmp_path / "server.log").start()
    try:
        yield process, members
    finally:
        process.stop()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def test_a_reader_that_never_reads_is_closed_and_costs_nobody_else(server):
    process, (slow_member, flooder_member, alice_member, bob_member) = server
    slow = RawSocket(process.port, rcvbuf=4096)
    slow.send_frame(json.dumps(hello_frame(
        mesh_id=slow_member.mesh_id, member_id=slow_member.member_id, pubkey=slow_member.pubkey,
        secret_hex=slow_member.secret_key, session_id="slow-1", pid=1, cwd="/slow",
    )).encode())
    assert json.loads(slow.next_frame()[1])["type"] == "hello_ack"  # and from now on it reads nothing
    flooder, alice, bob = (E2EPeer(m, process.ws_url) for m in (flooder_member, alice_member, bob_member))
    for peer in (flooder, alice, bob):
        await peer.connect()
    rss_before = rss_mb(process.proc.pid)

    acked: set[str] = set()
    ack_waits: list[float] = []

    async def flood() -> None:
        for n in range(2000):
            sent = time.monotonic()
            frame = {"type": "send", "id": f"f{n}", "targetSpec": slow_member.pubkey, "nonce": "n", "ciphertext": CIPHERTEXT}
            await flooder.send(frame)
            ack = await flooder.expect(lambda f, i=f"f{n}": f.get("type") == "ack" and f.get("id") == i, timeout=10)
            ack_waits.append(time.monotonic() - sent)
            if ack["queued"]:
                acked.add(ack["messageId"])

    victim_latency: list[float] = []

    async def victims() -> None:
        for n in range(100):
            sent = time.monotonic()
            await alice.send({"type": "send", "id": f"v{n}", "targetSpec": bob_member.pubkey, "nonce": "n", "ciphertext": "v"})
            ack = await alice.expect(lambda f, i=f"v{n}": f.get("type") == "ack" and f.get("id") == i)
            while ack["messageId"] not in {mid for _, mid in bob.pushes}:
                await asyncio.sleep(0.002)
            victim_latency.append(time.monotonic() - sent)
            await asyncio.sleep(0.02)

    await asyncio.gather(flood(), victims())
    rss_after = rss_mb(process.proc.pid)

    # Then the slow socket was closed with a reason, after what it had been given
    got_on_slow: set[str] = set()
    while True:
        opcode, payload = slow.next_frame()
        if opcode == 0x8:
            assert (int.from_bytes(payload[:2], "big"), payload[2:].decode()) == (1008, "slow_consumer")
            break
        if opcode in (0x9, 0xA):  # the server's keepalive pings (random binary payloads) are not messages
            continue
        frame = json.loads(payload)
        if frame.get("type") == "push":
            got_on_slow.add(frame["messageId"])
    slow.close()
    print(f"slow consumer: {len(got_on_slow)} of {len(acked)} pushes reached it before the close; worker RSS "
          f"{rss_before:.0f} → {rss_after:.0f} MB; flooder ack p99 {percentile(ack_waits, 0.99) * 1000:.0f} ms; "
          f"victim send→push p99 {percentile(victim_latency, 0.99) * 1000:.0f} ms")
    assert len(acked) == 2000 and len(got_on_slow) < 2000
    # the worker buffered a bounded amount for it, and everyone else went on as usual
    assert rss_after - rss_before < 100, (rss_before, rss_after)
    # A stall bound, not a speed target: before the outbox every other sender waited until the slow socket died.
    assert percentile(ack_waits, 0.99) < STALLED, percentile(ack_waits, 0.99)
    assert percentile(victim_latency, 0.99) < STALLED, percentile(victim_latency, 0.99)

    # And nothing acknowledged is lost: the slow member's next connection gets the rest
    back = E2EPeer(slow_member, process.ws_url)
    await back.connect()
    deadline = time.monotonic() + 60
    while acked - got_on_slow - {mid for _, mid in back.pushes}:
        assert time.monotonic() < deadline, len(acked - got_on_slow - {mid for _, mid in back.pushes})
        await asyncio.sleep(0.1)
    for peer in (flooder, alice, bob, back):
        await peer.close()
