"""The three scenarios (burst, steady, idle): connect everyone, run the clock, build the report."""

from __future__ import annotations

import asyncio
import os
import resource
import secrets
import sys
import time
from dataclasses import dataclass, field

from bench.groups import GroupConfig, LocalGroup, RemoteGroup, own_cpu_seconds
from bench.ledger import Ledger
from bench.peers import PeerGroup
from bench.plans import PlanSpec
from bench.procstats import ServerSampler, ServiceCpu, cost_per_message
from bench.profiling import Profiler
from bench.report import delivered_pct, latency_summary, rate_per_s
from bench.roster import Roster

# Sends that start this long after everyone is connected, so the "go" reaches every process first.
START_DELAY = 0.3


@dataclass
class RunOptions:
    urls: list[str]
    pids: list[int] = field(default_factory=list)
    procs: int = 1
    timeout: float = 120.0
    grace: float = 0.5
    connect_concurrency: int = 20
    hello_timeout: float = 10.0
    want_delivery_ack: bool = True
    client_message_id: bool = True
    size: int = 64
    seed: int = 1
    progress: bool = True
    profile_dir: str | None = None
    paced: bool = False


def raise_fd_limit(needed: int) -> None:
    """Each connection is a file descriptor: lift the soft limit toward the hard one when needed."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = needed + 256
    if soft != resource.RLIM_INFINITY and soft < want:
        new_soft = want if hard == resource.RLIM_INFINITY else min(want, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (new_soft, hard))


class Progress:
    """One status line on stderr: rewritten in place on a terminal, every few seconds otherwise."""

    def __init__(self, enabled: bool, label: str) -> None:
        self.enabled = enabled
        self.label = label
        self.tty = sys.stderr.isatty()
        self._last = 0.0

    def show(self, text: str, force: bool = False) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if not force and now - self._last < (0.5 if self.tty else 5.0):
            return
        self._last = now
        sys.stderr.write(f"\r[{self.label}] {text}\033[K" if self.tty else f"[{self.label}] {text}\n")
        sys.stderr.flush()

    def done(self) -> None:
        if self.enabled and self.tty:
            sys.stderr.write("\n")


def _split(indices: list[int], parts: int) -> list[list[int]]:
    return [chunk for chunk in (indices[k::parts] for k in range(parts)) if chunk]


def _make_groups(roster: Roster, opts: RunOptions, spec: PlanSpec, ledger: Ledger, interval: float | None):
    """One peer group per harness process (LocalGroup when --procs 1), peers dealt round-robin."""
    offsets = None
    if interval is not None:
        # Stagger the senders evenly over one interval so the aggregate rate is smooth, not a tick every 1/R s.
        offsets = {s: interval * n / len(spec.senders) for n, s in enumerate(spec.senders)}
    groups = []
    for chunk in _split(list(spec.recipients), max(1, opts.procs)):
        config = GroupConfig(roster=roster.to_dict(), indices=chunk, urls=opts.urls, run_tag=spec.run_tag, spec=spec,
                             interval=interval, offsets=offsets, connect_concurrency=opts.connect_concurrency,
                             hello_timeout=opts.hello_timeout, want_delivery_ack=opts.want_delivery_ack,
                             paced=opts.paced)
        groups.append(LocalGroup(config, ledger) if opts.procs <= 1 else RemoteGroup(config, ledger))
    return groups


async def _wait_for_deliveries(ledger: Ledger, opts: RunOptions, start_at: float, progress: Progress) -> bool:
    """Until every planned message is acked and pushed (then `grace` more seconds), or the timeout.

    Returns True when the run timed out.
    """
    deadline = start_at + opts.timeout
    complete_since = None
    while True:
        now = time.monotonic()
        progress.show(f"sent {ledger.sent}/{ledger.planned_sends} acked {ledger.acked} delivered {ledger.delivered} "
                      f"({delivered_pct(ledger.delivered, ledger.planned_sends):.1f} %) dup {ledger.duplicates} "
                      f"{max(0.0, now - start_at):.1f}s")
        if ledger.complete():
            # Keep listening a little: a duplicate push after the last delivery must still be counted.
            complete_since = complete_since or now
            if now - complete_since >= opts.grace:
                return False
        if now > deadline:
            return True
        await asyncio.sleep(0.02)


def _delivery_figures(ledger: Ledger) -> dict:
    first, last = ledger.first_send, ledger.last_push
    return {
        "sent": ledger.sent, "planned": ledger.planned_sends, "acked": ledger.acked, "accepted": ledger.accepted,
        "rejected": ledger.acked - ledger.accepted, "unacked": ledger.sent - ledger.acked,
        "delivered": ledger.delivered, "delivered_pct": delivered_pct(ledger.delivered, ledger.planned_sends),
        "duplicates": ledger.duplicates, "duplicate_gap_ms": latency_summary(ledger.duplicate_gap),
        "lost": ledger.accepted - ledger.delivered,
        "stray_pushes": ledger.stray_pushes, "errors": dict(ledger.errors),
        "ack_ms": latency_summary(ledger.ack_latency), "push_ms": latency_summary(ledger.push_latency),
        "duration_s": round(last - first, 3) if first is not None and last is not None else None,
        "delivered_per_s": rate_per_s(ledger.delivered, first, last),
    }


async def run_traffic(scenario: str, roster: Roster, opts: RunOptions, *, senders: list[int], msgs_per_sender: int,
                      interval: float | None = None) -> dict:
    """burst (interval None) or steady: connect every roster peer, send the plan, wait for every push."""
    everyone = tuple(range(len(roster.members)))
    spec = PlanSpec(senders=tuple(senders), recipients=everyone, msgs_per_sender=msgs_per_sender,
                    run_tag=secrets.token_hex(4), seed=opts.seed, size=opts.size,
                    client_message_id=opts.client_message_id, paced=opts.paced)
    raise_fd_limit(len(everyone))
    ledger = Ledger(planned_sends=spec.planned_sends)
    progress = Progress(opts.progress, scenario)
    groups = _make_groups(roster, opts, spec, ledger, interval)

    progress.show(f"connecting {len(everyone)} peers and encrypting {spec.planned_sends} envelopes", force=True)
    connect_started = time.monotonic()
    results = await asyncio.gather(*(g.connect() for g in groups))
    connect_s = time.monotonic() - connect_started
    ok = sum(r[0] for r in results)
    report = {
        "scenario": scenario, "urls": opts.urls, "peers": len(everyone), "meshes": len(roster.mesh_ids),
        "senders": len(senders),
        "msgs_per_sender": msgs_per_sender, "connections_ok": ok, "connections_failed": len(everyone) - ok,
        "connect_s": round(connect_s, 2), "delivery_ack": any(r[2] for r in results),
        # Other work on the machine skews the figures: record how busy it was when the clock started.
        "loadavg_1m": round(os.getloadavg()[0], 2),
    }
    if interval is not None:
        report["rate_per_peer"] = round(1 / interval, 3)
    if opts.paced:
        report["paced"] = True
    timed_out, server, services = False, {}, ServiceCpu()
    cpu_before = own_cpu_seconds()
    if ok == len(everyone):
        sampler = ServerSampler(opts.pids)
        profiler = Profiler(opts.profile_dir, opts.pids, max_seconds=opts.timeout + 60)
        await profiler.start()  # after connecting: the profile covers the measured phase only
        sampler.start()
        services.start()
        start_at = time.monotonic() + START_DELAY
        for group in groups:
            await group.start(start_at)
        timed_out = await _wait_for_deliveries(ledger, opts, start_at, progress)
        progress.show(f"sent {ledger.sent} acked {ledger.acked} delivered {ledger.delivered}", force=True)
        server = await sampler.stop()
        server.update(services.stop())
        profile_files = await profiler.stop()
        if profile_files:
            report["profile"] = profile_files
    else:
        ledger.on_error("run_not_started:connect_failures")
    child_cpu = sum(await asyncio.gather(*(g.stop() for g in groups)))
    progress.done()
    for result in results:
        for reason, count in result[1].items():
            ledger.on_error(reason, count)

    report.update(_delivery_figures(ledger))
    report.update({
        "server": server, "timed_out": timed_out,
        "harness": {"procs": max(1, opts.procs), "cpu_s": round(own_cpu_seconds() - cpu_before + child_cpu, 2)},
    })
    if interval is not None:
        report["send_lag_ms"] = latency_summary(ledger.send_lag)
    report["cpu_ms_per_msg"] = cost_per_message(broker_cpu_s=server.get("cpu_s"), services=server,
                                                messages=ledger.delivered)
    report["ok"] = not timed_out and report["delivered"] == spec.planned_sends and report["duplicates"] == 0
    return report


async def run_idle(roster: Roster, opts: RunOptions, *, connections: int, hold: float, scenario: str = "idle") -> dict:
    """K connections that only say hello and stay: hellos/s, the CPU of a hello, the server's RSS growth per
    connection (`connect` is the same run with many handshakes at once)."""
    raise_fd_limit(connections)
    ledger = Ledger()
    run_tag = secrets.token_hex(4)
    # Members are reused cyclically, meshes taken in turn (Roster.interleaved), so the sockets spread evenly
    # over every mesh; each connection has its own sessionId so none replaces another.
    order = roster.interleaved()
    group = PeerGroup(roster, range(connections), opts.urls, ledger, run_tag=run_tag,
                      connect_concurrency=opts.connect_concurrency, hello_timeout=opts.hello_timeout,
                      want_delivery_ack=opts.want_delivery_ack, member_for=lambda i: order[i % len(order)])
    progress = Progress(opts.progress, scenario)
    loadavg = round(os.getloadavg()[0], 2)
    sampler, services = ServerSampler(opts.pids), ServiceCpu()
    sampler.start()
    services.start()
    progress.show(f"opening {connections} connections", force=True)
    started = time.monotonic()
    timed_out = False
    try:
        ok, failures = await asyncio.wait_for(group.connect_all(), opts.timeout)
    except TimeoutError:  # bounded like the traffic scenarios: count what got through
        timed_out = True
        ok = sum(1 for peer in group.peers.values() if peer.ready)
        failures = group.failures
    connect_s = time.monotonic() - started
    connect_cpu = sampler.cpu_now() - sampler.cpu_start if opts.pids else None
    connect_services = services.stop()
    progress.show(f"{ok}/{connections} connected; holding {hold:.1f}s", force=True)
    await asyncio.sleep(hold)  # let the server settle (allocations, presence writes) before measuring
    server = await sampler.stop()
    await group.close_all()
    progress.done()
    for reason, count in failures.items():
        ledger.on_error(reason, count)
    if server and ok:
        server["rss_per_conn_kb"] = round((server["rss_after_mb"] - server["rss_before_mb"]) * 1024 / ok, 1)
        server["connect_cpu_s"] = round(connect_cpu, 2)
    server.update(connect_services)
    return {
        "cpu_ms_per_hello": cost_per_message(broker_cpu_s=connect_cpu, services=connect_services, messages=ok),
        "scenario": scenario, "urls": opts.urls, "meshes": len(roster.mesh_ids), "connections": connections,
        "connections_ok": ok,
        "connections_failed": connections - ok, "connect_s": round(connect_s, 2),
        "connections_per_s": round(ok / connect_s, 1) if connect_s > 0 else None,
        "delivery_ack": group.delivery_ack, "errors": dict(ledger.errors), "server": server,
        "harness": {"procs": 1, "cpu_s": round(own_cpu_seconds(), 2)}, "timed_out": timed_out,
        "ok": ok == connections and not timed_out, "delivered_pct": None, "delivered_per_s": None, "loadavg_1m": loadavg,
    }
