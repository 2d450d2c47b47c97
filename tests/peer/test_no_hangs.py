"""Commands that always return (docs/peer.md, "Deadlines"): many commands of one identity at once all finish, a
refused connection fails at once, a silent server is given up on at the deadline, and SIGTERM ends a command.
Real `claudemesh` processes against a real server (and a real socket that never answers)."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest

from tests.peer.conftest import ROOT
from tests.peer.test_e2e import join_both

pytestmark = pytest.mark.slow


def test_many_commands_of_one_identity_run_at_once_and_all_return(e2e_server, make_peer):
    """Given alice's one identity, when 16 sends and 8 other commands of hers run at the same moment (more than
    her connection cap), then every one exits 0 and bob gets all 16 messages once."""
    alice, bob = join_both(e2e_server, make_peer)
    bob.watch()
    commands = [["send", "bob", f"parallel {n}"] for n in range(16)]
    commands += [["peers"], ["members"], ["whoami"], ["inbox"]] * 2
    procs = [alice.start(*command, "--json") for command in commands]
    results = []
    for command, proc in zip(commands, procs, strict=True):
        out, err = proc.communicate(timeout=120)
        results.append((command, proc.returncode, err))
    assert [r for r in results if r[1] != 0] == []
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        got = [t for t in bob.inbox_texts() if t.startswith("parallel ")]
        if len(got) >= 16:
            break
        time.sleep(0.3)
    assert sorted(got) == sorted(f"parallel {n}" for n in range(16))


def pointed_at(peer, url: str) -> None:
    path = peer.config_dir / "config.json"
    config = json.loads(path.read_text())
    for mesh in config["meshes"]:
        mesh["brokerUrl"] = url
    path.write_text(json.dumps(config))


class SilentServer:
    """Accepts TCP connections and never says a word (no WebSocket handshake)."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.held: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.held.append(conn)

    def close(self):
        self.sock.close()
        for conn in self.held:
            conn.close()


def cli(peer, *args, env=None):
    return subprocess.Popen([sys.executable, "-m", "peer.cli", *args], cwd=ROOT, env={**peer.env, **(env or {})},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_a_refused_connection_fails_at_once(e2e_server, make_peer):
    alice, _ = join_both(e2e_server, make_peer)
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()  # nothing listens there now
    pointed_at(alice, f"ws://127.0.0.1:{port}/ws")
    started = time.monotonic()
    result = alice.run("peers", check=False)
    elapsed = time.monotonic() - started
    assert result.returncode == 4 and "cannot reach the broker" in result.stderr
    assert elapsed < 6, f"took {elapsed:.1f}s; it used to retry for 10.5 s"  # a loose bound: no retries


def test_a_silent_server_is_given_up_on_at_the_deadline(e2e_server, make_peer):
    alice, _ = join_both(e2e_server, make_peer)
    silent = SilentServer()
    try:
        pointed_at(alice, f"ws://127.0.0.1:{silent.port}/ws")
        proc = cli(alice, "apikey", "list", env={"CLAUDEMESH_TIMEOUT": "2"})
        out, err = proc.communicate(timeout=30)
        assert proc.returncode == 4 and "gave up after 2s" in err, err
    finally:
        silent.close()


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_ends_a_waiting_command(e2e_server, make_peer, signum):
    alice, _ = join_both(e2e_server, make_peer)
    silent = SilentServer()
    try:
        pointed_at(alice, f"ws://127.0.0.1:{silent.port}/ws")
        proc = cli(alice, "invite")
        deadline = time.monotonic() + 20
        while not silent.held and time.monotonic() < deadline:  # it is connected and waiting
            time.sleep(0.05)
        assert silent.held
        proc.send_signal(signum)
        out, err = proc.communicate(timeout=10)
        assert proc.returncode == 128 + signum and "interrupted" in err
    finally:
        silent.close()
