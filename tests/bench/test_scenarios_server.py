"""The performance-pass scenarios end to end against a real server process (embedded: daphne-less `serve`, SQLite,
in-memory layer), with a tiny roster; the durability figures against a throwaway Postgres database."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.support.servers import (
    ROOT,
    ServerProcess,
    free_port,
    manage,
    migrate,
    server_env,
    throwaway_postgres_database,
)

pytestmark = pytest.mark.slow
DATABASE_URL = os.environ.get("DATABASE_URL", "")


@pytest.fixture
def embedded_server(tmp_path):
    port = free_port()
    env = server_env(tmp_path, port, BROKER_SEND_RATE_BURST="100000")
    migrate(env)
    roster = tmp_path / "roster.json"
    manage(env, "bench_roster", "--peers", "6", "--out", str(roster))
    server = ServerProcess(port=port, env=env, log_path=tmp_path / "server.log").start()
    yield server, roster
    server.stop()


def run(module: str, *args: str, timeout: float = 120) -> dict:
    result = subprocess.run([sys.executable, "-m", module, *args], cwd=ROOT, capture_output=True, text=True,
                            timeout=timeout)
    assert result.returncode == 0, result.stdout + result.stderr
    return json.loads(result.stdout)


def test_a_paced_burst_sends_like_the_reference_and_reports_cpu_per_message(embedded_server):
    server, roster = embedded_server
    report = run("bench", "burst", "--paced", "--roster", str(roster), "--url", server.ws_url, "--msgs", "120",
                 "--pids", str(server.proc.pid), "--json", "--quiet")
    # every envelope was encrypted as it went, over v0.1 hellos (no deliveryAck), and all arrived once
    assert report["paced"] is True and report["delivery_ack"] is False
    assert report["delivered"] == report["sent"] == 720 and report["duplicates"] == 0
    assert set(report["cpu_ms_per_msg"]) == {"broker_ms", "postgres_ms", "redis_ms"}
    assert report["cpu_ms_per_msg"]["broker_ms"] > 0


def test_connect_reports_hellos_per_second_and_the_cpu_of_a_hello(embedded_server):
    server, roster = embedded_server
    report = run("bench", "connect", "--roster", str(roster), "--url", server.ws_url, "--connections", "30",
                 "--hold", "0.2", "--pids", str(server.proc.pid), "--json", "--quiet")
    assert report["scenario"] == "connect" and report["connections_ok"] == 30
    assert report["connections_per_s"] > 0 and report["cpu_ms_per_hello"]["broker_ms"] > 0


def test_fanout_counts_each_matching_receiver_once(embedded_server):
    server, roster = embedded_server
    common = ["--roster", str(roster), "--url", server.ws_url, "--senders", "2", "--msgs", "3"]
    everyone = run("bench.fanout", "fanout", "--target", "*", *common)
    assert everyone["receivers"] == 4 and everyone["deliveries"] == everyone["expected"] == 2 * 3 * 4
    team = run("bench.fanout", "fanout", "--target", "@team", *common)  # members 3 and 5 of 2..5
    assert team["receivers"] == 2 and team["deliveries"] == team["expected"] == 2 * 3 * 2


def test_flood_compares_the_victims_with_their_own_baseline_and_counts_losses(embedded_server):
    server, roster = embedded_server
    report = run("bench.fanout", "flood", "--roster", str(roster), "--url", server.ws_url, "--duration", "1",
                 "--trickle-rate", "5", "--pids", str(server.proc.pid))
    assert report["ok"] and report["lost"] == 0 and report["duplicates"] == 0
    assert report["flood_accepted"] > 0 and report["flood_deliveries"] == report["flood_accepted"]
    assert report["victim_messages"] == report["baseline_messages"] == 25
    assert report["victim_p99_ms"] > 0 and report["baseline_p99_ms"] > 0


@pytest.mark.skipif(not DATABASE_URL.startswith("postgres"), reason="Postgres relation sizes")
def test_durability_figures_and_the_retention_sweep_at_a_small_scale(tmp_path):
    with throwaway_postgres_database(DATABASE_URL, "claudemesh_durability") as database:
        env = server_env(tmp_path, free_port(), DATABASE_URL=database)
        migrate(env)
        manage(env, "bench_roster", "--peers", "2", "--out", str(tmp_path / "roster.json"))
        swept = run("bench.durability", "retention", "--database-url", database, "--rows", "2000", "--days", "8",
                    "--batch", "100")
        # an eighth of 8 days of messages is past the 7-day retention: it goes, a batch of 100 at a time
        assert 200 <= swept["deleted"] <= 300 and swept["batches"] == -(-swept["deleted"] // 100)
        assert swept["left"] == 2000 - swept["deleted"] and swept["batch_ms"]["max"] > 0
        size = run("bench.durability", "size", "--database-url", database)
        assert size["per_message"]["broker_delivery"]["rows"] == 1.0
        assert size["bytes_per_message"] > 0
