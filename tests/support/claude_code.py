"""The real Claude Code CLI for the registration tests: the npm package `@anthropic-ai/claude-code`, pinned, installed
into var/ (ignored) on first use. Its `claude mcp list/get` start the registered server and say whether it connects."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CLAUDE_CODE_VERSION = "2.1.328"
PREFIX = ROOT / "var" / "claude-code"


def claude_bin() -> Path | None:
    """The `claude` command, installed if needed; None when npm is missing (the test then says so)."""
    binary = PREFIX / "node_modules" / ".bin" / "claude"
    installed = PREFIX / "node_modules" / "@anthropic-ai" / "claude-code" / "package.json"
    if binary.exists() and f'"version": "{CLAUDE_CODE_VERSION}"' in installed.read_text():
        return binary
    npm = shutil.which("npm")
    if npm is None:
        return None
    PREFIX.mkdir(parents=True, exist_ok=True)
    subprocess.run([npm, "install", "--prefix", str(PREFIX), "--no-audit", "--no-fund", "--loglevel=error",
                    f"@anthropic-ai/claude-code@{CLAUDE_CODE_VERSION}"], check=True, timeout=600,
                   env={**os.environ, "npm_config_update_notifier": "false"})
    return binary if binary.exists() else None
