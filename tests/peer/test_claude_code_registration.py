"""Registration against the real Claude Code (npm `@anthropic-ai/claude-code`): after `claudemesh install`, run
from a venv that is not on PATH, `claude mcp list` / `claude mcp get claudemesh` start our server and it
connects, whether install found `claude` on PATH (it then uses `claude mcp add`) or not (it writes the file)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.claude_code import claude_bin

pytestmark = pytest.mark.slow
SYSTEM_PATH = "/usr/local/bin:/usr/bin:/bin"  # no venv on it: Claude Code never runs inside one


@pytest.fixture(scope="module")
def claude():
    binary = claude_bin()
    if binary is None:
        pytest.skip("npm is not installed: cannot install @anthropic-ai/claude-code")
    return binary


def run(args, *, home: Path, path: str, timeout: float = 120) -> subprocess.CompletedProcess:
    env = {key: value for key, value in os.environ.items() if not key.startswith(("CLAUDEMESH_", "VIRTUAL_ENV"))}
    env.update(HOME=str(home), PATH=path, CLAUDEMESH_CONFIG_DIR=str(home / ".claudemesh"))
    return subprocess.run(args, env=env, capture_output=True, text=True, timeout=timeout, cwd=home,
                          stdin=subprocess.DEVNULL)


def installed_claudemesh() -> str:
    script = Path(sys.executable).parent / "claudemesh"
    assert script.exists(), "the project's venv has the console script (pip install -e .)"
    return str(script)


@pytest.mark.parametrize("claude_on_path", [True, False], ids=["claude-on-path", "claude-not-on-path"])
def test_the_registered_server_starts_and_connects_in_claude_code(tmp_path, claude, claude_on_path):
    home = tmp_path / "home"
    home.mkdir()
    path = f"{claude.parent}:{SYSTEM_PATH}" if claude_on_path else SYSTEM_PATH
    result = run([installed_claudemesh(), "install", "--json"], home=home, path=path)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    registered_by_claude = any("claude mcp add" in change for change in report["changes"])
    assert registered_by_claude is claude_on_path
    assert any("not on PATH" in warning for warning in report["warnings"]) is not claude_on_path

    entry = json.loads((home / ".claude.json").read_text())["mcpServers"]["claudemesh"]
    assert entry["type"] == "stdio" and entry["command"] == installed_claudemesh() and entry["args"] == ["mcp"]
    listed = run([str(claude), "mcp", "list"], home=home, path=SYSTEM_PATH)
    assert "claudemesh" in listed.stdout and "Connected" in listed.stdout, listed.stdout + listed.stderr
    shown = run([str(claude), "mcp", "get", "claudemesh"], home=home, path=SYSTEM_PATH)
    assert "Connected" in shown.stdout and installed_claudemesh() in shown.stdout, shown.stdout + shown.stderr

    settings = json.loads((home / ".claude" / "settings.json").read_text())
    assert "mcp__claudemesh__send_message" in settings["permissions"]["allow"]
    assert all(h["command"].startswith(installed_claudemesh()) for groups in settings["hooks"].values()
               for g in groups for h in g["hooks"])

    removed = run([installed_claudemesh(), "uninstall", "--json"], home=home, path=path)
    assert removed.returncode == 0, removed.stderr
    assert "claudemesh" not in run([str(claude), "mcp", "list"], home=home, path=SYSTEM_PATH).stdout
