"""Run the benchmark matrix used for docs/benchmarks.md: for each server setup, start it with run_server,
run each scenario with `python -m bench ... --json`, and collect the reports.

    python -m bench.suite --setups embedded,pg1,pg2 --out var/bench/results.json

Setups: embedded (daphne + SQLite + in-memory layer), pg1 (Postgres + Redis, one daphne), pg2 (two daphnes
on consecutive ports sharing Postgres + Redis; the harness spreads peers round-robin so about half the
messages cross workers). Every run is bounded by the harness's --timeout and the server's --lifetime.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

SETUPS = {
    "embedded": ["--db", "embedded"],
    "pg1": ["--db", "postgres", "--workers", "1"],
    "pg2": ["--db", "postgres", "--workers", "2"],
}

# name -> harness arguments (after the scenario's own server URL/pids/roster are added)
SCENARIOS = {
    "burst": ["burst", "--msgs", "100"],                           # 100 peers x 100 = 10,000 messages at once
    "steady200": ["steady", "--rate", "2", "--duration", "20"],    # 100 senders x 2/s = 200 msgs/s for 20 s
    "steady500": ["steady", "--rate", "5", "--duration", "20"],    # 100 senders x 5/s = 500 msgs/s for 20 s
    "idle": ["idle", "--connections", "1000", "--hold", "3"],      # 1,000 idle sockets (members reused)
    "burst-ref": ["burst", "--msgs", "1000"],                      # the reference load test: 100 x 1000
}
DEFAULT_SCENARIOS = "burst,steady200,steady500,idle"


def start_server(setup: str, peers: int, port: int, extra: list[str]) -> tuple[subprocess.Popen, dict]:
    command = [sys.executable, "-m", "bench.run_server", *SETUPS[setup], "--peers", str(peers), "--port", str(port),
               "--state-dir", f"var/bench/{setup}", "--lifetime", "1800", *extra]
    proc = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    if not line:
        proc.wait(10)
        raise RuntimeError(f"run_server for {setup} exited with {proc.returncode}")
    return proc, json.loads(line)


def run_scenario(info: dict, args: list[str], harness_extra: list[str], timeout: float) -> dict:
    command = [sys.executable, "-m", "bench", *args, "--roster", info["roster"], "--url", ",".join(info["urls"]),
               "--pids", ",".join(str(p) for p in info["pids"]), "--timeout", str(timeout), "--json", "--quiet",
               *harness_extra]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=timeout + 300)
    try:
        report = json.loads(result.stdout)
    except ValueError:
        report = {"ok": False, "crash": (result.stdout + result.stderr)[-2000:]}
    report["exit_code"] = result.returncode
    report["command"] = " ".join(["python", "-m", "bench", *args, "--roster", "ROSTER",
                                  "--url", ",".join(info["urls"]), "--pids", "PIDS", *harness_extra])
    return report


def _ms(report: dict, kind: str) -> str:
    lat = report.get(kind) or {}
    if lat.get("p50") is None:
        return "-"
    return f"{lat['p50']:,.0f} / {lat['p95']:,.0f} / {lat['p99']:,.0f} / {lat['max']:,.0f}"


def markdown_table(results: list[dict]) -> str:
    """The results as the Markdown table of docs/benchmarks.md."""
    lines = [
        "| setup | scenario | sent | delivered % | dup | lost | errors | msgs/s | send→ack ms p50/p95/p99/max "
        "| send→push ms p50/p95/p99/max | server CPU s | server peak RSS MiB | load 1m |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        server = r.get("server") or {}
        if r.get("scenario") == "idle":
            per_conn = server.get("rss_per_conn_kb")
            lines.append(
                f"| {r.get('setup')} | idle ×{r.get('connections')} | {r.get('connections_ok')} connected in "
                f"{r.get('connect_s')} s ({r.get('connections_per_s')}/s) | - | - | - | "
                f"{sum((r.get('errors') or {}).values())} | - | - | - | {server.get('cpu_s')} | "
                f"{server.get('peak_rss_mb')} (≈{per_conn} KiB per connection) | {r.get('loadavg_1m', '-')} |")
            continue
        name = r.get("scenario")
        if name == "steady":
            name = f"steady {r.get('senders')}×{r.get('rate_per_peer'):g}/s"
        else:
            name = f"{name} {r.get('senders')}×{r.get('msgs_per_sender')}"
        lines.append(
            f"| {r.get('setup')} | {name} | {r.get('sent'):,} | {r.get('delivered_pct')} | {r.get('duplicates')} | "
            f"{r.get('lost')} | {sum((r.get('errors') or {}).values())} | {r.get('delivered_per_s')} | "
            f"{_ms(r, 'ack_ms')} | {_ms(r, 'push_ms')} | {server.get('cpu_s')} | {server.get('peak_rss_mb')} | "
            f"{r.get('loadavg_1m', '-')} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.suite", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--setups", default="embedded,pg1,pg2")
    parser.add_argument("--scenarios", default=DEFAULT_SCENARIOS, help=f"from {', '.join(SCENARIOS)}")
    parser.add_argument("--peers", type=int, default=100)
    parser.add_argument("--port", type=int, default=7900)
    parser.add_argument("--timeout", type=float, default=300.0, help="harness --timeout per scenario")
    parser.add_argument("--harness", default="", help="extra harness arguments, e.g. '--procs 2'")
    parser.add_argument("--server", default="", help="extra run_server arguments, e.g. '--server uvicorn'")
    parser.add_argument("--out", default="var/bench/results.json")
    parser.add_argument("--table", metavar="RESULTS_JSON", help="only print the Markdown table of a results file")
    args = parser.parse_args(argv)
    if args.table:
        print(markdown_table(json.loads(Path(args.table).read_text())))
        return 0
    results = []
    for setup in args.setups.split(","):
        proc, info = start_server(setup, args.peers, args.port, args.server.split())
        try:
            for name in args.scenarios.split(","):
                print(f"[suite] {setup} {name} ...", file=sys.stderr, flush=True)
                report = run_scenario(info, SCENARIOS[name], args.harness.split(), args.timeout)
                report["setup"] = setup
                results.append(report)
                print(f"[suite] {setup} {name}: ok={report.get('ok')} delivered_per_s={report.get('delivered_per_s')}"
                      f" push p50={(report.get('push_ms') or {}).get('p50')}", file=sys.stderr, flush=True)
        finally:
            os.kill(proc.pid, signal.SIGTERM)  # run_server stops its own daphne processes
            proc.wait(30)
    out = ROOT / args.out
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2, sort_keys=True))
    print(markdown_table(results))
    return 0 if all(r.get("ok") for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
