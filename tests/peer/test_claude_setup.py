"""install/uninstall on a fake HOME: Claude Code's files come back byte-identical and unrelated entries stay."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from peer.claude_setup import ALLOWED_TOOLS, ClaudePaths, SetupError, hook_command, install, our_command, uninstall

ROOT = Path(__file__).resolve().parents[2]

# Deliberately not in our own formatting: compact separators, odd key order, no trailing newline.
CLAUDE_JSON = '{"numStartups":42,"mcpServers":{"other":{"command":"npx","args":["-y","other-mcp"],"type":"stdio"}},"projects":{"/x":{"allowedTools":[]}}}'
SETTINGS = json.dumps(
    {"model": "opus", "allowedTools": ["Bash(ls:*)"],
     "hooks": {"Stop": [{"matcher": "", "hooks": [{"type": "command", "command": "say done"}]}]}},
    indent=4,
)


def snapshot(home: Path) -> dict[str, bytes]:
    return {str(p.relative_to(home)): p.read_bytes() for p in sorted(home.rglob("*")) if p.is_file()}


@pytest.fixture
def home(tmp_path):
    home = tmp_path / "home"
    (home / ".claude").mkdir(parents=True)
    (home / ".claude.json").write_text(CLAUDE_JSON)
    (home / ".claude" / "settings.json").write_text(SETTINGS)
    os.chmod(home / ".claude.json", 0o600)
    return home


def test_install_adds_our_entries_and_keeps_the_rest(home, tmp_path):
    paths = ClaudePaths(home)
    install(paths, tmp_path / "state")
    data = json.loads(paths.claude_json.read_text())
    assert data["mcpServers"]["other"] == {"command": "npx", "args": ["-y", "other-mcp"], "type": "stdio"}
    assert data["mcpServers"]["claudemesh"]["args"][-1] == "mcp"
    assert data["numStartups"] == 42 and data["projects"] == {"/x": {"allowedTools": []}}
    settings = json.loads(paths.settings.read_text())
    assert settings["allowedTools"] == ["Bash(ls:*)"]  # the user's own, untouched
    assert set(ALLOWED_TOOLS) <= set(settings["permissions"]["allow"])  # where Claude Code reads approvals
    commands = [h["command"] for groups in settings["hooks"].values() for g in groups for h in g["hooks"]]
    assert "say done" in commands
    assert {hook_command(a) for a in ("idle", "working", "inbox", "wake")} <= set(commands)
    assert (paths.skill_dir / "SKILL.md").exists()
    assert os.stat(paths.claude_json).st_mode & 0o777 == 0o600


def test_install_twice_is_idempotent(home, tmp_path):
    paths = ClaudePaths(home)
    install(paths, tmp_path / "state")
    after_first = snapshot(home)
    install(paths, tmp_path / "state")
    assert snapshot(home) == after_first


def test_uninstall_restores_every_byte(home, tmp_path):
    before = snapshot(home)
    install(ClaudePaths(home), tmp_path / "state")
    assert snapshot(home) != before
    uninstall(ClaudePaths(home), tmp_path / "state")
    assert snapshot(home) == before
    assert sorted(p.name for p in (home / ".claude").iterdir()) == ["settings.json"]


def test_uninstall_after_user_edits_removes_only_ours(home, tmp_path):
    paths = ClaudePaths(home)
    install(paths, tmp_path / "state")
    data = json.loads(paths.claude_json.read_text())
    data["mcpServers"]["added-later"] = {"command": "x"}
    paths.claude_json.write_text(json.dumps(data))
    uninstall(paths, tmp_path / "state")
    data = json.loads(paths.claude_json.read_text())
    assert set(data["mcpServers"]) == {"other", "added-later"}
    assert paths.settings.read_text() == SETTINGS  # untouched since install → exact bytes back


def test_fresh_home_is_left_empty(tmp_path):
    home = tmp_path / "empty-home"
    home.mkdir()
    install(ClaudePaths(home), tmp_path / "state")
    assert (home / ".claude.json").exists() and (home / ".claude" / "settings.json").exists()
    uninstall(ClaudePaths(home), tmp_path / "state")
    assert list(home.iterdir()) == []


def test_broken_claude_json_changes_nothing(home, tmp_path):
    (home / ".claude.json").write_text("{broken")
    before = snapshot(home)
    with pytest.raises(SetupError, match="not valid JSON"):
        install(ClaudePaths(home), tmp_path / "state")
    assert snapshot(home) == before


def test_cli_install_uninstall_with_fake_home(home, tmp_path):
    before = snapshot(home)
    env = {**os.environ, "HOME": str(home), "CLAUDEMESH_CONFIG_DIR": str(tmp_path / "cm"), "PATH": "/usr/bin:/bin"}
    run = lambda *args: subprocess.run([sys.executable, "-m", "peer.cli", *args], cwd=ROOT, env=env,  # noqa: E731
                                       capture_output=True, text=True, timeout=60)
    result = run("install", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["ok"] is True and any("`claude` command is not on PATH" in w for w in report["warnings"])
    entry = json.loads((home / ".claude.json").read_text())["mcpServers"]["claudemesh"]
    assert entry["env"] == {"CLAUDEMESH_CONFIG_DIR": str(tmp_path / "cm")}  # the server Claude starts uses this config
    result = run("uninstall")
    assert result.returncode == 0, result.stderr
    assert snapshot(home) == before


def test_commands_are_absolute_and_the_idle_session_is_woken_in_the_background(home, tmp_path):
    paths = ClaudePaths(home)
    install(paths, tmp_path / "state")
    entry = json.loads(paths.claude_json.read_text())["mcpServers"]["claudemesh"]
    assert entry["type"] == "stdio" and Path(entry["command"]).is_absolute() and entry["args"][-1] == "mcp"
    assert Path(our_command()[0]).is_absolute()
    hooks = json.loads(paths.settings.read_text())["hooks"]
    ours = {event: [h for g in groups for h in g["hooks"] if "hook" in h["command"] and h["command"] != "say done"]
            for event, groups in hooks.items()}
    assert all(Path(h["command"].split()[0]).is_absolute() for entries in ours.values() for h in entries)
    wake = [h for h in ours["Stop"] if h["command"].endswith("hook wake")]
    assert wake == [{"type": "command", "command": hook_command("wake"), "asyncRewake": True, "timeout": 3600}]
    assert [h["command"] for h in ours["PostToolUse"]] == [hook_command("inbox")]


def test_an_earlier_install_is_upgraded_in_place(home, tmp_path):
    """Given what an earlier version wrote (approvals under a top-level allowedTools key Claude Code does not read,
    hooks by bare name), when install runs, then the approvals move to permissions.allow and the hooks become
    absolute, with no duplicate."""
    settings = json.loads(SETTINGS)
    settings["allowedTools"].append("mcp__claudemesh__list_peers")
    settings["hooks"]["Stop"].append({"hooks": [{"type": "command", "command": "claudemesh hook idle"}]})
    (home / ".claude" / "settings.json").write_text(json.dumps(settings))
    install(ClaudePaths(home), tmp_path / "state")
    after = json.loads((home / ".claude" / "settings.json").read_text())
    assert after["allowedTools"] == ["Bash(ls:*)"]
    stop = [h["command"] for g in after["hooks"]["Stop"] for h in g["hooks"]]
    assert "claudemesh hook idle" not in stop and stop.count(hook_command("idle")) == 1 and "say done" in stop
