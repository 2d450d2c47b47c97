"""The harness end to end against the fake broker: counting is right when the broker behaves and when not."""

from __future__ import annotations

import json

import pytest
from websockets.asyncio.server import serve

from bench.cli import main
from bench.roster import Roster
from bench.scenarios import RunOptions, run_idle, run_traffic
from tests.support.fake_broker import FakeBroker, make_roster


@pytest.fixture
async def broker():
    fake = await FakeBroker().start()
    yield fake
    await fake.stop()


async def test_burst_all_delivered_and_push_acked(broker):
    roster = Roster.from_dict(make_roster(4))
    report = await run_traffic("burst", roster, RunOptions(urls=[broker.url], progress=False),
                               senders=[0, 1, 2, 3], msgs_per_sender=5)
    assert report["ok"] and report["sent"] == 20 and report["delivered"] == 20
    assert report["delivered_pct"] == 100.0 and report["duplicates"] == 0 and report["lost"] == 0
    assert report["delivery_ack"] is True
    assert len(broker.push_acked) == 20


async def test_duplicates_and_losses_are_counted(broker):
    broker.duplicate_every, broker.drop_every = 4, 5
    roster = Roster.from_dict(make_roster(3))
    report = await run_traffic("burst", roster, RunOptions(urls=[broker.url], progress=False, timeout=1.0),
                               senders=[0, 1, 2], msgs_per_sender=10)
    assert report["sent"] == 30 and report["accepted"] == 30
    assert report["lost"] == 30 // 5
    assert report["duplicates"] > 0
    assert report["timed_out"] and not report["ok"]


async def test_steady_sends_on_schedule(broker):
    roster = Roster.from_dict(make_roster(3))
    report = await run_traffic("steady", roster, RunOptions(urls=[broker.url], progress=False),
                               senders=[0, 1], msgs_per_sender=4, interval=0.05)
    assert report["ok"] and report["delivered"] == 8
    assert report["send_lag_ms"]["count"] == 8
    assert report["duration_s"] >= 0.15  # 4 sends 50 ms apart: not all at once


async def test_idle_reuses_members_with_distinct_sessions(broker):
    roster = Roster.from_dict(make_roster(2))
    report = await run_idle(roster, RunOptions(urls=[broker.url], progress=False), connections=6, hold=0.0)
    assert report["ok"] and report["connections_ok"] == 6


def test_cli_json_over_two_urls_and_two_processes(tmp_path, capsys):
    import asyncio
    import threading

    loop = asyncio.new_event_loop()
    fake = loop.run_until_complete(FakeBroker().start())
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        roster_path = tmp_path / "roster.json"
        roster_path.write_text(json.dumps(make_roster(4)))
        code = main(["burst", "--roster", str(roster_path), "--url", f"{fake.url},{fake.url}", "--msgs", "3",
                     "--procs", "2", "--json", "--quiet"])
        report = json.loads(capsys.readouterr().out)
    finally:
        asyncio.run_coroutine_threadsafe(fake.stop(), loop).result(5)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
    assert code == 0
    assert report["delivered_pct"] == 100.0 and report["delivered_per_s"] > 0
    assert report["harness"]["procs"] == 2 and len(report["urls"]) == 2


async def test_idle_is_bounded_by_the_timeout():
    async def never_ack(ws):  # a server that accepts sockets but never answers hello
        async for _ in ws:
            pass

    async with serve(never_ack, "127.0.0.1", 0) as server:
        url = f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}/ws"
        roster = Roster.from_dict(make_roster(2))
        report = await run_idle(roster, RunOptions(urls=[url], progress=False, timeout=0.5, hello_timeout=5),
                                connections=3, hold=0.0)
    assert report["timed_out"] and not report["ok"] and report["connections_ok"] == 0
