"""Optional py-spy sampling of the server during exactly the measured phase (after connect, until the end).

py-spy is a measuring tool, not a dependency: `pip install py-spy` into the venv to use `--profile DIR`.
One raw (collapsed-stack) file per server pid; summarise with `python -m bench.hotspots FILE`.
"""

from __future__ import annotations

import asyncio
import shutil
import signal
import sys
from pathlib import Path


def py_spy_binary() -> str | None:
    beside = Path(sys.executable).parent / "py-spy"
    return str(beside) if beside.exists() else shutil.which("py-spy")


class Profiler:
    def __init__(self, out_dir: str | None, pids: list[int], rate: int = 200, max_seconds: float = 600) -> None:
        self.out_dir = Path(out_dir) if out_dir else None
        self.pids = pids
        self.rate = rate
        self.max_seconds = max_seconds
        self.procs: list[asyncio.subprocess.Process] = []
        self.files: list[str] = []

    async def start(self) -> None:
        if not self.out_dir or not self.pids:
            return
        binary = py_spy_binary()
        if binary is None:
            raise SystemExit("--profile needs py-spy (pip install py-spy)")
        self.out_dir.mkdir(parents=True, exist_ok=True)
        for pid in self.pids:
            out = self.out_dir / f"pyspy-{pid}.raw"
            self.files.append(str(out))
            self.procs.append(await asyncio.create_subprocess_exec(
                binary, "record", "--pid", str(pid), "--rate", str(self.rate), "--format", "raw", "--threads",
                "--duration", str(int(self.max_seconds)), "--output", str(out),
                stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL))
        await asyncio.sleep(1.0)  # let py-spy attach before the clock starts

    async def stop(self) -> list[str]:
        for proc in self.procs:
            if proc.returncode is None:
                proc.send_signal(signal.SIGINT)  # py-spy writes its output on SIGINT
        for proc in self.procs:
            try:
                await asyncio.wait_for(proc.wait(), 30)
            except TimeoutError:
                proc.kill()
        return self.files
