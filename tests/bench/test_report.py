"""Percentile and report math, and the ledger's correlation of sends, acks and pushes (no server needed)."""

from __future__ import annotations

import pytest

from bench.ledger import Ledger, error_reason
from bench.report import delivered_pct, format_table, latency_summary, percentile, rate_per_s


def test_percentile_is_nearest_rank():
    values = list(range(1, 101))  # 1..100
    assert percentile(values, 50) == 50
    assert percentile(values, 95) == 95
    assert percentile(values, 99) == 99
    assert percentile(values, 100) == 100
    assert percentile([7.0], 99) == 7.0
    assert percentile([1, 2, 3, 4], 50) == 2
    assert percentile([1, 2, 3, 4], 51) == 3
    assert percentile([], 50) is None


def test_percentile_rejects_out_of_range():
    with pytest.raises(ValueError):
        percentile([1, 2], 0)
    with pytest.raises(ValueError):
        percentile([1, 2], 101)


def test_latency_summary_in_ms_from_unsorted_seconds():
    summary = latency_summary([0.003, 0.001, 0.002, 0.010])
    assert summary == {"p50": 2.0, "p95": 10.0, "p99": 10.0, "max": 10.0, "count": 4}
    assert latency_summary([]) == {"p50": None, "p95": None, "p99": None, "max": None, "count": 0}


def test_delivered_pct_and_rate():
    assert delivered_pct(50, 200) == 25.0
    assert delivered_pct(0, 0) == 100.0
    assert delivered_pct(2, 3) == 66.667
    assert rate_per_s(100, 10.0, 12.0) == 50.0
    assert rate_per_s(100, None, 12.0) is None
    assert rate_per_s(100, 12.0, 12.0) is None


def test_error_reason_buckets():
    assert error_reason("rate_limit: max 60 msg/min (burst 10) — slow down") == "rate_limit"
    assert error_reason("payload too large: 70000 bytes > MAX_MESSAGE_BYTES=65536") == "payload too large"
    assert error_reason("rejected") == "rejected"


def test_ledger_matches_push_that_arrives_before_its_ack():
    ledger = Ledger(planned_sends=2)
    ledger.on_send("0-0", 1.000)
    ledger.on_send("0-1", 1.001)
    ledger.on_push("m1", 1.010)  # the recipient read its push before the sender read the ack
    assert ledger.delivered == 0 and ledger.stray_pushes == 1
    ledger.on_ack("0-0", 1.020, "m1", None)
    assert ledger.delivered == 1 and ledger.stray_pushes == 0
    assert ledger.push_latency == [pytest.approx(0.010)]
    ledger.on_ack("0-1", 1.005, "m2", None)
    assert not ledger.complete()
    ledger.on_push("m2", 1.030)
    assert ledger.complete()
    assert ledger.first_send == 1.000 and ledger.last_push == 1.030


def test_ledger_counts_duplicates_rejections_and_losses():
    ledger = Ledger(planned_sends=3)
    for n in range(3):
        ledger.on_send(f"0-{n}", 0.0)
    ledger.on_ack("0-0", 0.1, "a", None)
    ledger.on_ack("0-1", 0.1, "", "rate_limit: max 60 msg/min")
    ledger.on_ack("0-2", 0.1, "c", None)
    ledger.on_push("a", 0.2)
    ledger.on_push("a", 0.3)
    ledger.on_push("zzz", 0.3)  # from an earlier run
    assert (ledger.accepted, ledger.delivered, ledger.duplicates) == (2, 1, 1)
    assert ledger.duplicate_gap == [pytest.approx(0.1)]
    assert ledger.errors == {"rate_limit": 1}
    assert ledger.stray_pushes == 1
    assert not ledger.complete()  # "c" was accepted but never pushed
    ledger.on_ack("9-9", 0.1, "x", None)
    assert ledger.errors["ack_for_unknown_send"] == 1


def test_table_mentions_the_key_figures():
    text = format_table({"scenario": "burst", "urls": ["ws://x/ws"], "sent": 10, "delivered": 10,
                         "delivered_pct": 100.0, "ack_ms": {"p50": 1.0}, "push_ms": {}, "ok": True,
                         "harness": {"procs": 1, "cpu_s": 0.1}})
    assert "delivered" in text and "100.00 %" in text and "OK" in text
