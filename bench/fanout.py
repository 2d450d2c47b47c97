"""Fan-out and flood benchmarks against a running broker (see `bench.run_server`), over the wire like real peers.

    python -m bench.fanout fanout --roster R --url U [--target '*' | --target @team] [--senders 5] [--msgs 200]
    python -m bench.fanout flood  --roster R --url U [--flood dm|broadcast] [--trickle-rate 1] [--duration 10]

fanout: every roster member connects (odd-numbered ones in group `team`); `--senders` of them each send `--msgs`
multicasts to `--target` as fast as acks allow (or `--rate` a second); every matching non-sender gets each one
live. Reports deliveries/s and send→push percentiles over every delivery.
flood: member 0 floods (DMs to the others in turn, or broadcasts) as fast as the broker takes them while every other
member sends DMs to random others at `--trickle-rate`. The trickle runs `--duration` s alone first (the baseline),
then as long again beside the flood: `victim_p99_ms` against `baseline_p99_ms`, and `lost` counts every accepted
message (flood and trickle) some recipient never got.
Both report the broker's (`--pids`), Postgres's and Redis's CPU per delivery.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import time
from collections import Counter
from collections.abc import Callable

from bench.procstats import ServerSampler, ServiceCpu, cost_per_message, parse_pids
from bench.roster import RosterMember, load_roster
from bench.topics import PIPELINE, open_peer, percentiles

BODY = "A" * 96  # the broker never reads a ciphertext: a stand-in of a short sealed message


class WirePeer:
    """One connection: sends stamped messages, hands acks and pushes of stamped messages to the run."""

    def __init__(self, ws, member: RosterMember, on_push: Callable[[str, float], None]) -> None:
        self.ws, self.member, self._on_push = ws, member, on_push
        self.window = asyncio.Semaphore(PIPELINE)
        self.accepted: list[str] = []
        self.refused: Counter[str] = Counter()
        self._reader = asyncio.create_task(self._read())

    async def send(self, stamp: str, target: str) -> None:
        await self.window.acquire()
        await self.ws.send(json.dumps({"type": "send", "id": stamp, "targetSpec": target, "priority": "now",
                                       "nonce": "bm9uY2U=", "ciphertext": f"{stamp}:{BODY}"}))

    async def _read(self) -> None:
        while True:
            text = await self.ws.recv()
            now = time.monotonic()
            if '"type":"push"' in text:
                if '"subtype":"system"' not in text:
                    self._on_push(json.loads(text)["ciphertext"].split(":", 1)[0], now)
                continue
            frame = json.loads(text)
            if frame.get("type") == "ack":
                self.window.release()
                if frame.get("queued"):
                    self.accepted.append(frame["id"])
                else:
                    self.refused[str(frame.get("error", "refused")).split(":", 1)[0]] += 1

    async def close(self) -> None:
        self._reader.cancel()
        await self.ws.close()


class Deliveries:
    """Send and push times by stamp; latency per delivery, and which kinds of stamps are still owed."""

    def __init__(self) -> None:
        self.sent_at: dict[str, float] = {}
        self.received: Counter[str] = Counter()
        self.latencies: dict[str, list[float]] = {}

    def sent(self, stamp: str) -> None:
        self.sent_at[stamp] = time.monotonic()

    def pushed(self, stamp: str, at: float) -> None:
        sent = self.sent_at.get(stamp)
        if sent is None:
            return  # an earlier run's message
        self.received[stamp] += 1
        self.latencies.setdefault(stamp.split("-", 1)[0], []).append(at - sent)


def _ignore(stamp: str, at: float) -> None:
    return None


async def _connect_all(roster, url: str, deliveries: Deliveries, groups_for=None, counted=lambda i: True) -> list[WirePeer]:
    """Every roster member, connected in turn; pushes are counted on the sockets `counted` picks."""
    peers = []
    for i, member in enumerate(roster.members):
        extra = {"groups": groups_for(i)} if groups_for else {}
        ws = await open_peer(url, roster.mesh_id, member, f"peer-{i}", **extra)
        peers.append(WirePeer(ws, member, deliveries.pushed if counted(i) else _ignore))
    return peers


async def _wait_until(condition: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.02)
    return True


def _measure_start(pids: list[int]) -> tuple[ServerSampler, ServiceCpu]:
    sampler, services = ServerSampler(pids), ServiceCpu()
    sampler.start()
    services.start()
    return sampler, services


async def _measure_stop(sampler: ServerSampler, services: ServiceCpu, deliveries: int) -> dict:
    server = await sampler.stop()
    server.update(services.stop())
    return {"server": server,
            "cpu_ms_per_delivery": cost_per_message(broker_cpu_s=server.get("cpu_s"), services=server, messages=deliveries)}


async def fanout(args) -> dict:
    roster = load_roster(args.roster)
    team = args.target == "@team"
    deliveries = Deliveries()
    # Senders also get each other's multicasts; only the receivers' sockets are counted.
    peers = await _connect_all(roster, args.url, deliveries,
                               groups_for=lambda i: [{"name": "team", "role": "member"}] if i % 2 else [],
                               counted=lambda i: i >= args.senders)
    senders = peers[: args.senders]
    receivers = [p for i, p in enumerate(peers) if i >= args.senders and (not team or i % 2)]
    expected = args.senders * args.msgs * len(receivers)
    counted = {f"s{n}" for n in range(args.senders)}

    def received() -> int:
        return sum(len(deliveries.latencies.get(kind, ())) for kind in counted)

    sampler, services = _measure_start(parse_pids(args.pids))
    started = time.monotonic()

    async def send_all(n: int, peer: WirePeer) -> None:
        for k in range(args.msgs):
            if args.rate:
                await asyncio.sleep(max(0.0, started + k / args.rate - time.monotonic()))
            stamp = f"s{n}-{k}"
            deliveries.sent(stamp)
            await peer.send(stamp, args.target)

    await asyncio.gather(*(send_all(n, peer) for n, peer in enumerate(senders)))
    await _wait_until(lambda: received() >= expected, args.timeout)
    elapsed = time.monotonic() - started
    measured = await _measure_stop(sampler, services, received())
    latencies = [lat for kind in counted for lat in deliveries.latencies.get(kind, ())]
    refused = sum((p.refused for p in senders), Counter())
    for peer in peers:
        await peer.close()
    return {"scenario": "fanout", "target": args.target, "members": len(peers), "receivers": len(receivers),
            "senders": args.senders, "messages": args.senders * args.msgs, "refused": dict(refused),
            "deliveries": len(latencies), "expected": expected, "seconds": round(elapsed, 2),
            "deliveries_per_s": round(len(latencies) / elapsed), **percentiles(latencies), **measured,
            "ok": len(latencies) >= expected and not refused}


async def flood(args) -> dict:
    roster = load_roster(args.roster)
    deliveries = Deliveries()
    peers = await _connect_all(roster, args.url, deliveries)
    flooder, trickle = peers[0], peers[1:]
    rng = random.Random(args.seed)

    async def trickle_phase(phase: str) -> None:
        began = time.monotonic()
        interval = 1.0 / args.trickle_rate

        async def one(n: int, peer: WirePeer) -> None:
            others = [p for p in trickle if p is not peer]
            k, offset = 0, interval * n / len(trickle)
            while (due := began + offset + k * interval) < began + args.duration:
                await asyncio.sleep(max(0.0, due - time.monotonic()))
                stamp = f"{phase}-{n}-{k}"
                deliveries.sent(stamp)
                await peer.send(stamp, rng.choice(others).member.pubkey)
                k += 1

        await asyncio.gather(*(one(n, peer) for n, peer in enumerate(trickle)))

    async def flood_until(stop: asyncio.Event) -> int:
        k = 0
        while not stop.is_set():
            stamp = f"f-{k}"
            deliveries.sent(stamp)
            target = "*" if args.flood == "broadcast" else trickle[k % len(trickle)].member.pubkey
            await flooder.send(stamp, target)
            k += 1
        return k

    def fanout_of(stamp: str) -> int:
        return len(trickle) if stamp.startswith("f") and args.flood == "broadcast" else 1

    def settled() -> bool:
        answered = sum(len(peer.accepted) + sum(peer.refused.values()) for peer in peers)
        return answered >= len(deliveries.sent_at) and all(
            deliveries.received[s] >= fanout_of(s) for peer in peers for s in peer.accepted)

    await trickle_phase("b")
    await _wait_until(settled, args.timeout)
    sampler, services = _measure_start(parse_pids(args.pids))
    stop = asyncio.Event()
    flooding = asyncio.create_task(flood_until(stop))
    await asyncio.sleep(1.0)  # the flood is under way before the victims' clock starts
    await trickle_phase("v")
    stop.set()
    flood_sent = await flooding
    complete = await _wait_until(settled, args.timeout)
    received_in_flood = sum(n for stamp, n in deliveries.received.items() if not stamp.startswith("b"))
    measured = await _measure_stop(sampler, services, received_in_flood)
    accepted = [stamp for peer in peers for stamp in peer.accepted]
    lost = sum(max(0, fanout_of(s) - deliveries.received[s]) for s in accepted)
    duplicates = sum(max(0, deliveries.received[s] - fanout_of(s)) for s in accepted)
    refused = sum((p.refused for p in peers), Counter())
    victim, baseline = deliveries.latencies.get("v", []), deliveries.latencies.get("b", [])
    for peer in peers:
        await peer.close()
    victim_p99, baseline_p99 = percentiles(victim).get("p99_ms"), percentiles(baseline).get("p99_ms")
    return {"scenario": "flood", "flood": args.flood, "members": len(peers), "trickle_rate": args.trickle_rate,
            "duration_s": args.duration, "flood_sent": flood_sent,
            "flood_accepted": sum(1 for s in flooder.accepted if s.startswith("f")),
            "flood_deliveries": sum(n for s, n in deliveries.received.items() if s.startswith("f")),
            "victim_messages": len(victim), "baseline_messages": len(baseline),
            "victim_p99_ms": victim_p99, "baseline_p99_ms": baseline_p99,
            "victim_ms": percentiles(victim), "baseline_ms": percentiles(baseline),
            "ratio": round(victim_p99 / baseline_p99, 2) if victim_p99 and baseline_p99 else None,
            "lost": lost, "duplicates": duplicates, "refused": dict(refused), "timed_out": not complete, **measured,
            "ok": complete and lost == 0 and duplicates == 0}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.fanout", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("scenario", choices=("fanout", "flood"))
    parser.add_argument("--roster", required=True)
    parser.add_argument("--url", required=True)
    parser.add_argument("--pids", default=None, help="broker process id(s), comma-separated")
    parser.add_argument("--target", default="*", choices=("*", "@team"), help="fanout: broadcast or a group")
    parser.add_argument("--senders", type=int, default=5, help="fanout: senders")
    parser.add_argument("--msgs", type=int, default=200, help="fanout: messages per sender")
    parser.add_argument("--rate", type=float, default=0, help="fanout: messages/s per sender (default: flat out)")
    parser.add_argument("--flood", default="dm", choices=("dm", "broadcast"), help="flood: what member 0 floods")
    parser.add_argument("--trickle-rate", type=float, default=1.0, help="flood: DMs/s per other member")
    parser.add_argument("--duration", type=float, default=10.0, help="flood: seconds per phase")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=120.0)
    args = parser.parse_args(argv)
    result = asyncio.run(fanout(args) if args.scenario == "fanout" else flood(args))
    print(json.dumps(result))
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
