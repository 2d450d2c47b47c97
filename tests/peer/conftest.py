"""End-to-end fixtures: one real server process (daphne: platform + broker) and the real `claudemesh` command
run in separate config dirs, one per peer."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.support.servers import MINT_INVITE, ServerProcess, free_port, manage, migrate, server_env

ROOT = Path(__file__).resolve().parents[2]



@dataclass
class E2EServer:
    process: ServerProcess
    env: dict[str, str]
    tmp: Path
    invite: dict = field(default_factory=dict)

    @property
    def http_url(self) -> str:
        return self.process.http_url

    def shell(self, code: str) -> str:
        return manage(self.env, "shell", "-c", code)


@pytest.fixture(scope="session")
def e2e_process(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("e2e-server")
    port = free_port()
    env = server_env(tmp, port)
    migrate(env)
    process = ServerProcess(port=port, env=env, log_path=tmp / "server.log").start()
    try:
        yield E2EServer(process=process, env=env, tmp=tmp)
    finally:
        process.stop()


@pytest.fixture
def e2e_server(e2e_process):
    """The shared server, with a mesh of this test's own: names are per mesh, and every test has its `bob`."""
    e2e_process.invite = json.loads(e2e_process.shell(MINT_INVITE).strip().splitlines()[-1])
    return e2e_process


@dataclass
class Peer:
    """One user of the `claudemesh` command with its own config dir (and fake HOME)."""

    name: str
    config_dir: Path
    env: dict[str, str]
    background: list[subprocess.Popen] = field(default_factory=list)

    def run(self, *args: str, timeout: float = 60, check: bool = True) -> subprocess.CompletedProcess:
        result = subprocess.run([sys.executable, "-m", "peer.cli", *args], cwd=ROOT, env=self.env,
                                capture_output=True, text=True, timeout=timeout)
        if check and result.returncode != 0:
            raise AssertionError(f"{self.name}: claudemesh {' '.join(args)} → {result.returncode}\n"
                                 f"stdout: {result.stdout}\nstderr: {result.stderr}")
        return result

    def json(self, *args: str, **kwargs):
        return json.loads(self.run(*args, "--json", **kwargs).stdout)

    def start(self, *args: str) -> subprocess.Popen:
        proc = subprocess.Popen([sys.executable, "-m", "peer.cli", *args], cwd=ROOT, env=self.env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.background.append(proc)
        return proc

    def watch(self) -> subprocess.Popen:
        """A long-lived `claudemesh watch --json`, returned once it is connected."""
        proc = self.start("watch", "--json")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                raise AssertionError(f"{self.name}: watch exited: {proc.stderr.read()}")
            if json.loads(line).get("ready"):
                return proc
        raise AssertionError(f"{self.name}: watch never connected")

    def inbox_texts(self) -> list[str]:
        return [m["plaintext"] for m in self.json("inbox", "--local", "--all", "--peek")]

    def wait_for_text(self, text: str, timeout: float = 20) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for record in self.json("inbox", "--local", "--all", "--peek"):
                if record["plaintext"] == text:
                    return record
            time.sleep(0.3)
        raise AssertionError(f"{self.name} never received {text!r}; inbox: {self.inbox_texts()}")

    def stop(self) -> None:
        for proc in self.background:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        self.background.clear()


@pytest.fixture
def make_peer(tmp_path):
    peers: list[Peer] = []

    def make(name: str) -> Peer:
        home = tmp_path / name / "home"
        home.mkdir(parents=True)
        env = {**os.environ, "HOME": str(home), "CLAUDEMESH_CONFIG_DIR": str(tmp_path / name / "claudemesh")}
        for key in ("CLAUDEMESH_DISPLAY_NAME", "CLAUDEMESH_SESSION_NAME", "CLAUDEMESH_SESSION_ID", "CLAUDEMESH_INVITE_V2",
                    "CLAUDEMESH_BROKER_URL", "CLAUDEMESH_API_URL", "CLAUDEMESH_CHANNELS"):
            env.pop(key, None)
        env["GIT_CONFIG_GLOBAL"] = str(home / ".gitconfig")  # this peer's own git identity (none unless written)
        env["GIT_CONFIG_NOSYSTEM"] = "1"
        peer = Peer(name=name, config_dir=tmp_path / name / "claudemesh", env=env)
        peers.append(peer)
        return peer

    yield make
    for peer in peers:
        peer.stop()
