"""The whole product in a real browser (Debian's chromium driven by Playwright) against a real server process,
with two real `claudemesh` peers: sign up → mesh → invite → two peers join and go online with summaries →
API key shown once → revoked in the dashboard → refused by the JSON API → audit chain verified.

Screenshots of every page land in var/test-results/screenshots/ (docs/screenshots/ keeps the README's copies). Sync Playwright in a plain test (no running event loop).
"""

from __future__ import annotations

import json
import os
import queue
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from tests.support.acceptance import OUTPUT, ROOT, record_results
from tests.support.servers import ServerProcess, free_port, migrate, server_env

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SHOTS = OUTPUT / "screenshots"  # ignored; the README's copies in docs/screenshots are refreshed from here by hand


class McpPeer:
    """`claudemesh mcp` as Claude Code runs it: a long-lived stdio JSON-RPC server holding the mesh connection."""

    def __init__(self, env: dict[str, str]):
        self.proc = subprocess.Popen([sys.executable, "-m", "peer.cli", "mcp"], cwd=ROOT, env=env, text=True,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        self.lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()
        self.next_id = 0

    def _pump(self) -> None:
        for line in self.proc.stdout:
            self.lines.put(line)

    def request(self, method: str, params: dict | None = None, timeout: float = 20) -> dict:
        self.next_id += 1
        wanted = self.next_id
        self._write({"jsonrpc": "2.0", "id": wanted, "method": method, "params": params or {}})
        deadline = time.monotonic() + timeout
        while True:
            message = json.loads(self.lines.get(timeout=max(deadline - time.monotonic(), 0.01)))
            if message.get("id") == wanted:
                assert "error" not in message, message
                return message["result"]

    def _write(self, message: dict) -> None:
        self.proc.stdin.write(json.dumps(message) + "\n")
        self.proc.stdin.flush()

    def start(self) -> None:
        self.request("initialize", {"protocolVersion": "2025-06-18", "capabilities": {},
                                    "clientInfo": {"name": "acceptance", "version": "1"}})
        self._write({"jsonrpc": "2.0", "method": "notifications/initialized"})
        deadline = time.monotonic() + 30
        while "open" not in self.tool("whoami"):  # the broker connection comes up in the background
            assert time.monotonic() < deadline, "the MCP server never connected to the broker"
            time.sleep(0.3)

    def tool(self, name: str, arguments: dict | None = None) -> str:
        result = self.request("tools/call", {"name": name, "arguments": arguments or {}})
        assert not result.get("isError"), result
        return result["content"][0]["text"]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.stdin.close()
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def peer_env(tmp_path: Path, name: str) -> dict[str, str]:
    home = tmp_path / name / "home"
    home.mkdir(parents=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLAUDEMESH_")}
    env.update({"HOME": str(home), "CLAUDEMESH_CONFIG_DIR": str(tmp_path / name / "claudemesh")})
    return env


def claudemesh(env: dict[str, str], *args: str) -> str:
    result = subprocess.run([sys.executable, "-m", "peer.cli", *args], cwd=ROOT, env=env, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, f"claudemesh {' '.join(args)} → {result.returncode}: {result.stderr}"
    return result.stdout


@pytest.fixture
def server(tmp_path):
    port = free_port()
    env = server_env(tmp_path, port)
    migrate(env)
    process = ServerProcess(port=port, env=env, log_path=tmp_path / "server.log").start()
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture
def browser():
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def test_sign_up_to_audit_in_a_real_browser(server, browser, tmp_path):
    started = time.monotonic()
    SHOTS.mkdir(parents=True, exist_ok=True)
    base = server.http_url
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.on("dialog", lambda dialog: dialog.accept())  # data-confirm on revoke buttons
    shots: list[str] = []

    def shot(name: str) -> None:
        page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)
        shots.append(f"{name}.png")

    mcp_peers: list[McpPeer] = []
    try:
        # Given a new visitor, when they sign up, then they land signed in on the dashboard.
        page.goto(f"{base}/accounts/signup/")
        page.fill("input[name=email]", "walkthrough@example.test")
        page.fill("input[name=password1]", "a long walkthrough passphrase 42")
        page.fill("input[name=password2]", "a long walkthrough passphrase 42")
        shot("01-sign-up")
        page.click("form.form button[type=submit]")
        page.wait_for_load_state()
        assert "walkthrough@example.test" in page.content()

        # When they create a mesh, then its page opens.
        page.goto(f"{base}/meshes/new/")
        page.fill("input[name=name]", "Walkthrough Mesh")
        page.click("form.form button[type=submit]")
        page.wait_for_url(re.compile(r"/meshes/[0-9A-Za-z]+/$"))
        mesh_url = page.url
        mesh_id = mesh_url.rstrip("/").rsplit("/", 1)[1]
        assert "Walkthrough Mesh" in page.content()
        shot("02-mesh-created")

        # When they mint an invite for two people, then its page shows the short link.
        page.goto(f"{mesh_url}invites/")
        page.fill("#invite-form input[name=max_uses]", "2")
        page.click("#invite-form button[type=submit]")
        page.wait_for_url(re.compile(r"/invites/[0-9A-Za-z]+/$"))
        code = re.search(r"/i/([A-Z2-9]{8})", page.content()).group(1)
        shot("03-invite")

        # When two peers join with that link and run their MCP servers with summaries set,
        # then the mesh page shows both online with their summaries.
        summaries = {"alice": "refactoring the scheduler", "bob": "reviewing the payments PR"}
        for name, summary in summaries.items():
            env = peer_env(tmp_path, name)
            claudemesh(env, "join", f"{base}/i/{code}", "--name", name)
            peer = McpPeer(env)
            mcp_peers.append(peer)
            peer.start()
            assert "Summary set" in peer.tool("set_summary", {"summary": summary})
        deadline = time.monotonic() + 30
        while True:
            page.goto(mesh_url)
            live = page.inner_text("#live-region")
            if all(name in live and summary in live for name, summary in summaries.items()):
                break
            assert time.monotonic() < deadline, f"peers never showed up online: {live}"
            time.sleep(0.5)
        assert re.search(r"Online now\s*2", live), live
        shot("04-mesh-two-peers-online")

        # When they create an API key, then its secret is shown once, works, and is gone on reload.
        page.goto(f"{mesh_url}keys/")
        page.fill("#key-create-form input[name=label]", "walkthrough-bot")
        page.click("#key-create-form button[type=submit]")
        page.wait_for_url(re.compile(r"/keys/created/$"))
        secret = page.input_value("#api-key-secret")
        assert re.fullmatch(r"cm_[A-Za-z0-9_-]{43}", secret), secret
        shot("05-api-key-secret-shown-once")
        bearer = {"Authorization": f"Bearer {secret}"}
        me = httpx.get(f"{base}/api/v1/me", headers=bearer, timeout=10)
        assert me.status_code == 200 and me.json()["mesh"]["id"] == mesh_id, me.text
        page.reload()
        assert secret not in page.content() and "Nothing to show" in page.content()

        # When they revoke it from the keys table, then the JSON API refuses it with 401.
        page.goto(f"{mesh_url}keys/")
        page.click("table form.inline button[type=submit]")
        page.wait_for_load_state()
        assert "revoked" in page.inner_text("table")
        shot("06-api-key-revoked")
        refused = httpx.get(f"{base}/api/v1/me", headers=bearer, timeout=10)
        assert refused.status_code == 401, refused.text

        # When they open the audit log, then the hash chain verifies and lists what they did.
        page.goto(f"{mesh_url}audit/")
        verdict = page.inner_text("#chain-verdict")
        assert verdict.startswith("✓ Chain verified"), verdict
        shot("07-audit-chain-verified")
    finally:
        for peer in mcp_peers:
            peer.stop()
        page.close()
    record_results("browser_walkthrough", "sign_up_to_audit", {
        "screenshots": shots, "peersOnline": 2, "revokedKeyStatus": 401, "auditChain": verdict,
        "seconds": round(time.monotonic() - started, 1),
    })
