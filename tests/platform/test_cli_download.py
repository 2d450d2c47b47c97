"""The CLI installs from the server itself (README: pipx install <server>/cli/<wheel>): the served wheel is one
pip accepts, holds `protocol/` and `peer/` and the `claudemesh` script, and works outside the clone."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile

import pytest

from claudemesh.cli_download import build_wheel, project
from tests.support.servers import ROOT, ServerProcess, free_port, migrate, server_env

pytestmark = pytest.mark.slow


def test_the_wheel_holds_the_peer_and_its_script(tmp_path):
    wheel = build_wheel(ROOT, tmp_path)
    names = zipfile.ZipFile(wheel).namelist()
    assert "peer/cli.py" in names and "protocol/envelope.py" in names
    assert not any(name.startswith(("broker/", "meshes/", "claudemesh/")) for name in names)
    info = project(ROOT)
    entry_points = zipfile.ZipFile(wheel).read(f"claudemesh-{info.version}.dist-info/entry_points.txt").decode()
    assert "claudemesh = peer.entry:main" in entry_points
    assert build_wheel(ROOT, tmp_path / "again").read_bytes() == wheel.read_bytes()  # the same tree, the same bytes


def test_pip_installs_the_served_wheel_and_the_command_runs_outside_the_clone(tmp_path):
    port = free_port()
    env = server_env(tmp_path, port)
    migrate(env)
    server = ServerProcess(port=port, env=env, log_path=tmp_path / "server.log").start()
    try:
        page = subprocess.run([sys.executable, "-c", f"import httpx; print(httpx.get('{server.http_url}/cli/').text)"],
                              capture_output=True, text=True, check=True).stdout
        url = f"{server.http_url}/cli/{project(ROOT).wheel_name}"
        assert f"pipx install {url}" in page
        target = tmp_path / "site"
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(target), url],
                       check=True, timeout=120)
    finally:
        server.stop()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    run_env = {**os.environ, "PYTHONPATH": str(target), "HOME": str(tmp_path)}
    where = subprocess.run([sys.executable, "-c", "import peer.cli; print(peer.cli.__file__)"], cwd=elsewhere,
                           env=run_env, capture_output=True, text=True, check=True).stdout
    assert where.startswith(str(target))
    version = subprocess.run([sys.executable, "-m", "peer.cli", "--version"], cwd=elsewhere, env=run_env,
                             capture_output=True, text=True)
    assert version.returncode == 0 and project(ROOT).version in version.stdout + version.stderr
