"""Whether the Claude Code that started this MCP server shows `notifications/claude/channel` pushes.

Claude Code only shows them when launched with `--dangerously-load-development-channels server:claudemesh`
(or `--channels …`); otherwise it drops them without a word. A message pushed that way is read; one pushed into
the void must stay new for `check_messages`. `CLAUDEMESH_CHANNELS=on|off` says it outright; else the launching
process's command line is read (Linux /proc, elsewhere `ps`).
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

CHANNEL_FLAGS = ("--dangerously-load-development-channels", "--channels")
SERVER_NAME = "claudemesh"


def channels_shown(parent_pid: int | None = None) -> bool:
    setting = os.environ.get("CLAUDEMESH_CHANNELS", "").strip().lower()
    if setting in ("on", "1", "true", "yes"):
        return True
    if setting in ("off", "0", "false", "no"):
        return False
    return flags_enable_us(launcher_args(parent_pid if parent_pid is not None else os.getppid()))


def flags_enable_us(args: list[str]) -> bool:
    """`--dangerously-load-development-channels server:claudemesh` (or `=`, or a comma list) names this server."""
    for index, arg in enumerate(args):
        flag, _, inline = arg.partition("=")
        if flag not in CHANNEL_FLAGS:
            continue
        values = inline if inline else (args[index + 1] if index + 1 < len(args) else "")
        if any(item.strip() in (f"server:{SERVER_NAME}", SERVER_NAME) or item.strip().startswith(f"plugin:{SERVER_NAME}")
               for item in values.split(",")):
            return True
    return False


def launcher_args(pid: int) -> list[str]:
    proc = Path(f"/proc/{pid}/cmdline")
    try:
        return [part for part in proc.read_bytes().decode(errors="replace").split("\0") if part]
    except OSError:
        pass
    try:
        text = subprocess.run(["ps", "-o", "args=", "-p", str(pid)], capture_output=True, text=True, timeout=2).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return text.split()
