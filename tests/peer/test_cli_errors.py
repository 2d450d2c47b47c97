"""Every bad input gets a clear message and the exit code of client.md §1.1 (no broker needed)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def run(tmp_path):
    env = {**os.environ, "HOME": str(tmp_path / "home"), "CLAUDEMESH_CONFIG_DIR": str(tmp_path / "cm")}
    env.pop("CLAUDEMESH_DEBUG", None)

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "peer.cli", *args], cwd=ROOT, env=env, capture_output=True,
                              text=True, timeout=60)

    return run


@pytest.mark.parametrize(
    ("args", "code", "text"),
    [
        (["frobnicate"], 3, "invalid choice"),
        (["send"], 3, "required"),
        (["send", "bob", "hi", "--priority", "urgent"], 3, "invalid choice"),
        (["peers"], 1, "No meshes joined"),
        (["send", "bob", "hi"], 1, "No meshes joined"),
        (["join", "not a link"], 3, "not an invite link"),
        (["join", "https://example.com/nothing/here"], 3, "not an invite link"),
        (["leave", "ghost"], 5, "not found"),
        (["apikey"], 3, "required"),
        (["status", "set"], 1, "No meshes joined"),
    ],
)
def test_errors(run, args, code, text):
    result = run(*args)
    assert result.returncode == code, (result.stdout, result.stderr)
    assert text in result.stderr
    assert "Traceback" not in result.stderr


def test_json_errors_are_json(run):
    result = run("send", "bob", "hi", "--json")
    assert result.returncode == 1
    assert json.loads(result.stdout) == {"ok": False, "error": "No meshes joined."}


def test_hook_never_fails(run):
    assert run("hook", "working").returncode == 0
    assert run("hook", "bogus").returncode == 0
    assert run("hook").returncode == 0


def test_version_and_help(run):
    assert run("--version").returncode == 0
    assert "send" in run("--help").stdout


def test_list_and_whoami_empty(run):
    assert json.loads(run("list", "--json").stdout) == []
    assert run("whoami").returncode == 1


def test_peer_never_imports_django_or_server_apps():
    """`pip install .` ships only peer/ and protocol/: importing every peer module must not need the server."""
    code = (
        "import sys\n"
        "for name in ('django', 'channels', 'meshes', 'broker', 'accounts', 'claudemesh'):\n"
        "    sys.modules[name] = None\n"
        "import pkgutil, importlib, peer\n"
        "for module in pkgutil.iter_modules(peer.__path__):\n"
        "    importlib.import_module('peer.' + module.name)\n"
        "import protocol.envelope\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
