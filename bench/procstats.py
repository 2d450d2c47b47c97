"""Server-side cost of a run, read from /proc: CPU seconds used and resident memory (Linux only)."""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass, field

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def parse_pids(text: str | None) -> list[int]:
    if not text:
        return []
    return [int(part) for part in text.split(",") if part.strip()]


def cpu_seconds(pid: int) -> float:
    """utime + stime of one process from /proc/<pid>/stat (fields 14 and 15)."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
        stat = handle.read()
    # The command name (field 2) may contain spaces and parentheses: split after its closing ')'.
    fields = stat[stat.rindex(")") + 2:].split()
    utime, stime = int(fields[11]), int(fields[12])
    return (utime + stime) / CLOCK_TICKS


def status_kib(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM (kB) from /proc/<pid>/status."""
    values: dict[str, int] = {}
    with open(f"/proc/{pid}/status", encoding="ascii") as handle:
        for line in handle:
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                values[key] = int(rest.split()[0])
    return values


def total_rss_kib(pids: list[int]) -> int:
    return sum(status_kib(pid).get("VmRSS", 0) for pid in pids)


@dataclass
class ServerSampler:
    """Samples the given server pids while a run goes on.

    CPU is the difference of utime+stime between start() and stop(); peak RSS is the highest sampled sum of
    VmRSS (VmHWM is the process-lifetime peak, so it is reported too but can predate the run).
    """

    pids: list[int]
    interval: float = 0.2
    cpu_start: float = 0.0
    cpu_end: float = 0.0
    peak_rss_kib: int = 0
    rss_start_kib: int = 0
    errors: list[str] = field(default_factory=list)
    _task: asyncio.Task | None = None

    def _cpu(self) -> float:
        return sum(cpu_seconds(pid) for pid in self.pids)

    def cpu_now(self) -> float:
        return self._cpu()

    def _sample(self) -> None:
        try:
            self.peak_rss_kib = max(self.peak_rss_kib, total_rss_kib(self.pids))
        except OSError as exc:  # the server died mid-run: report it rather than crash the harness
            self.errors.append(str(exc))

    def start(self) -> None:
        if not self.pids:
            return
        self.cpu_start = self._cpu()
        self.rss_start_kib = total_rss_kib(self.pids)
        self.peak_rss_kib = self.rss_start_kib
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        while True:
            self._sample()
            await asyncio.sleep(self.interval)

    async def stop(self) -> dict:
        if not self.pids:
            return {}
        if self._task:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        self._sample()
        try:
            self.cpu_end = self._cpu()
            hwm = sum(status_kib(pid).get("VmHWM", 0) for pid in self.pids)
            rss_now = total_rss_kib(self.pids)
        except OSError as exc:
            self.errors.append(str(exc))
            return {"pids": self.pids, "errors": self.errors}
        result = {
            "pids": self.pids,
            "cpu_s": round(self.cpu_end - self.cpu_start, 2),
            "peak_rss_mb": round(self.peak_rss_kib / 1024, 1),
            "vmhwm_mb": round(hwm / 1024, 1),
            "rss_before_mb": round(self.rss_start_kib / 1024, 1),
            "rss_after_mb": round(rss_now / 1024, 1),
        }
        if self.errors:
            result["errors"] = self.errors
        return result


SERVICE_NAMES = {"postgres": "postgres", "redis": "redis-server"}


def pids_named(comm: str) -> list[int]:
    """Every process whose command name is `comm` (Postgres: the postmaster, its backends and helpers)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/comm", encoding="utf-8", errors="replace") as handle:
                if handle.read().strip() == comm:
                    found.append(int(entry))
        except OSError:
            continue
    return found


def _cpu_by_pid(pids: list[int]) -> dict[int, float]:
    cpu = {}
    for pid in pids:
        try:
            cpu[pid] = cpu_seconds(pid)
        except OSError:  # exited meanwhile
            continue
    return cpu


class ServiceCpu:
    """CPU seconds Postgres and Redis (every process of theirs on this machine) spent between start() and stop():
    what a message costs the services besides the broker. A backend that starts during the run counts whole; one
    that exits during it loses what it spent since start()."""

    def __init__(self) -> None:
        self._before: dict[str, dict[int, float]] = {}

    def start(self) -> None:
        self._before = {name: _cpu_by_pid(pids_named(comm)) for name, comm in SERVICE_NAMES.items()}

    def stop(self) -> dict[str, float]:
        spent = {}
        for name, comm in SERVICE_NAMES.items():
            before = self._before.get(name, {})
            now = _cpu_by_pid(pids_named(comm))
            spent[f"{name}_cpu_s"] = round(sum(cpu - before.get(pid, 0.0) for pid, cpu in now.items()), 2)
        return spent


def cost_per_message(*, broker_cpu_s: float | None, services: dict[str, float], messages: int) -> dict[str, float]:
    """Milliseconds of CPU per message (or per delivery, or per hello: whatever `messages` counts)."""
    if not messages:
        return {}
    costs = {"postgres_ms": services.get("postgres_cpu_s", 0.0), "redis_ms": services.get("redis_cpu_s", 0.0)}
    if broker_cpu_s is not None:
        costs["broker_ms"] = broker_cpu_s
    return {key: round(seconds * 1000 / messages, 3) for key, seconds in costs.items()}
