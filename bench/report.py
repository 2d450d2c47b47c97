"""Turn the ledger's raw counts and latencies into the run report (dict for --json, table for humans)."""

from __future__ import annotations

import math
from collections.abc import Sequence

PERCENTILES = (50, 95, 99)


def percentile(sorted_values: Sequence[float], pct: float) -> float | None:
    """Nearest-rank percentile of an already sorted sequence (None when empty).

    Nearest rank (not interpolation) so every reported figure is a latency that was actually observed.
    """
    if not sorted_values:
        return None
    if not 0 < pct <= 100:
        raise ValueError("percentile must be in (0, 100]")
    rank = math.ceil(pct / 100 * len(sorted_values))
    return sorted_values[max(rank, 1) - 1]


def latency_summary(seconds: Sequence[float]) -> dict[str, float | None]:
    """p50/p95/p99/max in milliseconds, rounded to 0.01 ms."""
    ordered = sorted(seconds)
    summary: dict[str, float | None] = {}
    for pct in PERCENTILES:
        value = percentile(ordered, pct)
        summary[f"p{pct}"] = None if value is None else round(value * 1000, 2)
    summary["max"] = round(ordered[-1] * 1000, 2) if ordered else None
    summary["count"] = len(ordered)
    return summary


def delivered_pct(delivered: int, sent: int) -> float:
    """Share of sends that got both an accepting ack and a push (the reference load test's figure)."""
    if sent == 0:
        return 100.0
    return round(100.0 * delivered / sent, 3)


def rate_per_s(count: int, first: float | None, last: float | None) -> float | None:
    if first is None or last is None or last <= first:
        return None
    return round(count / (last - first), 1)


def _fmt(value, unit: str = "") -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.2f}{unit}"
    return f"{value:,}{unit}" if isinstance(value, int) else f"{value}{unit}"


def _gap(gap: dict | None) -> str:
    if not gap or not gap.get("count"):
        return ""
    return f" (repeated {_fmt(gap.get('p50'))} ms after the first push at p50, max {_fmt(gap.get('max'))} ms)"


def format_table(report: dict) -> str:
    """A human-readable report: one 'label  value' line per figure, latencies as one row per kind."""
    rows: list[tuple[str, str]] = [
        ("scenario", str(report.get("scenario"))),
        ("urls", ", ".join(report.get("urls", []))),
        ("connections", f"{report.get('connections_ok')} ok / {report.get('connections_failed')} failed "
                        f"in {_fmt(report.get('connect_s'), ' s')}"),
    ]
    if report.get("scenario") not in ("idle", "connect"):
        rows += [
            ("sent", _fmt(report.get("sent"))),
            ("accepted", _fmt(report.get("accepted"))),
            ("delivered", f"{_fmt(report.get('delivered'))} ({_fmt(report.get('delivered_pct'))} %)"),
            ("duplicates", _fmt(report.get("duplicates")) + _gap(report.get("duplicate_gap_ms"))),
            ("lost (accepted, never pushed)", _fmt(report.get("lost"))),
            ("unacked", _fmt(report.get("unacked"))),
            ("stray pushes (unknown id)", _fmt(report.get("stray_pushes"))),
            ("delivered msgs/s", _fmt(report.get("delivered_per_s"))),
            ("first send -> last push", _fmt(report.get("duration_s"), " s")),
        ]
        for kind in ("ack_ms", "push_ms"):
            lat = report.get(kind) or {}
            label = "send->ack ms" if kind == "ack_ms" else "send->push ms"
            rows.append((label, "p50 {} | p95 {} | p99 {} | max {}".format(
                *(_fmt(lat.get(k)) for k in ("p50", "p95", "p99", "max")))))
        if report.get("send_lag_ms"):
            lag = report["send_lag_ms"]
            rows.append(("schedule lag ms", f"p50 {_fmt(lag.get('p50'))} | p99 {_fmt(lag.get('p99'))} "
                                            f"| max {_fmt(lag.get('max'))}"))
    errors = report.get("errors") or {}
    rows.append(("errors", ", ".join(f"{k}: {v}" for k, v in sorted(errors.items())) or "none"))
    server = report.get("server") or {}
    if server:
        rows += [
            ("server pids", ", ".join(str(p) for p in server.get("pids", []))),
            ("server CPU s", _fmt(server.get("cpu_s"))),
            ("server peak RSS MiB", f"{_fmt(server.get('peak_rss_mb'))} (VmHWM {_fmt(server.get('vmhwm_mb'))})"),
        ]
        costs = report.get("cpu_ms_per_msg") or report.get("cpu_ms_per_hello") or {}
        if costs:
            unit = "hello" if "cpu_ms_per_hello" in report else "delivered message"
            rows.append((f"CPU ms per {unit}", " | ".join(f"{k[:-3]} {_fmt(v)}" for k, v in sorted(costs.items()))))
        if report.get("scenario") in ("idle", "connect"):
            rows += [
                ("server RSS before/after MiB", f"{_fmt(server.get('rss_before_mb'))} / "
                                                f"{_fmt(server.get('rss_after_mb'))}"),
                ("server RSS per connection KiB", _fmt(server.get("rss_per_conn_kb"))),
            ]
    harness = report.get("harness") or {}
    rows.append(("harness", f"{harness.get('procs')} process(es), CPU {_fmt(harness.get('cpu_s'), ' s')}"))
    rows.append(("result", "TIMED OUT" if report.get("timed_out") else ("OK" if report.get("ok") else "FAILED")))
    width = max(len(label) for label, _ in rows)
    return "\n".join(f"{label.ljust(width)}  {value}" for label, value in rows)
