"""The harness end to end against a real server process (daphne, embedded SQLite), with a tiny roster."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.support.servers import ROOT, ServerProcess, free_port, manage, migrate, server_env

pytestmark = pytest.mark.slow


@pytest.fixture
def embedded_server(tmp_path):
    port = free_port()
    env = server_env(tmp_path, port)
    migrate(env)
    roster = tmp_path / "roster.json"
    manage(env, "bench_roster", "--peers", "4", "--out", str(roster))
    server = ServerProcess(port=port, env=env, log_path=tmp_path / "server.log").start()
    yield server, roster
    server.stop()


def run_bench(*args: str, timeout: float = 90) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bench", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout)


def test_burst_delivers_everything_once(embedded_server):
    server, roster = embedded_server
    result = run_bench("burst", "--roster", str(roster), "--url", server.ws_url, "--msgs", "5",
                       "--pids", str(server.proc.pid), "--timeout", "30", "--json", "--quiet")
    assert result.returncode == 0, result.stdout + result.stderr + server.log_text()[-3000:]
    report = json.loads(result.stdout)
    for key in ("sent", "accepted", "delivered_pct", "delivered_per_s", "duplicates", "lost", "errors",
                "ack_ms", "push_ms", "server", "timed_out"):
        assert key in report
    assert report["sent"] == 20 and report["accepted"] == 20
    assert report["delivered_pct"] == 100.0
    assert report["duplicates"] == 0 and report["lost"] == 0 and not report["timed_out"]
    assert report["delivery_ack"] is True  # the broker's at-least-once path is the one measured
    assert report["push_ms"]["p50"] is not None and report["delivered_per_s"] > 0
    assert report["server"]["pids"] == [server.proc.pid] and report["server"]["cpu_s"] >= 0


def test_steady_and_idle_against_the_server(embedded_server):
    server, roster = embedded_server
    steady = run_bench("steady", "--roster", str(roster), "--url", server.ws_url, "--rate", "10", "--duration",
                       "0.5", "--peers", "2", "--timeout", "30", "--json", "--quiet")
    assert steady.returncode == 0, steady.stdout + steady.stderr
    assert json.loads(steady.stdout)["delivered"] == 10
    idle = run_bench("idle", "--roster", str(roster), "--url", server.ws_url, "--connections", "8", "--hold", "0.2",
                     "--pids", str(server.proc.pid), "--json", "--quiet")
    assert idle.returncode == 0, idle.stdout + idle.stderr
    report = json.loads(idle.stdout)
    assert report["connections_ok"] == 8 and "rss_per_conn_kb" in report["server"]
