"""The Python SDK against a real server process: the two examples (a CI job posting to a topic, a bot answering
DMs) run as written, and a bot with a `send`+`read` API key posts to a topic and reads its DM inbox over REST
with envelopes sealed and opened by `peer.Mesh` (the server sees only ciphertext)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from peer import Mesh, RestClient
from tests.peer.test_topic_verbs import join

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]


def _example(name: str, config_dir: Path, *args: str, background: bool = False):
    env = {**os.environ, "CLAUDEMESH_CONFIG_DIR": str(config_dir)}
    command = [sys.executable, str(ROOT / "examples" / name), *args]
    if background:
        return subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=True)


def _link(e2e_server) -> str:
    return f"{e2e_server.http_url}/i/{e2e_server.invite['code']}"


def test_the_ci_example_posts_to_a_topic_a_member_reads(e2e_server, make_peer, tmp_path):
    alice = join(e2e_server, make_peer, "alice")
    alice.json("topic", "create", "deploys")
    posted = _example("ci_post_to_topic.py", tmp_path / "ci", _link(e2e_server), "deploys", "build 412 is green")
    assert len(posted.stdout.strip()) >= 20
    again = _example("ci_post_to_topic.py", tmp_path / "ci", _link(e2e_server), "deploys", "build 413 is green")
    history = alice.json("topic", "history", "deploys")["messages"]
    assert [m["text"] for m in history][:2] == ["build 413 is green", "build 412 is green"]  # newest first
    assert {m["senderName"] for m in history} == {"ci"} and again.returncode == 0


def test_the_dm_bot_example_answers(e2e_server, make_peer, tmp_path):
    alice = join(e2e_server, make_peer, "alice")
    bot = _example("dm_echo_bot.py", tmp_path / "bot", _link(e2e_server), "20", background=True)
    try:
        assert bot.stdout.readline().strip() == "ready", bot.stderr.read()
        alice.run("send", "echo-bot", "ping")
        alice.run("inbox", "--wait", "3")
        assert "echo: ping" in alice.inbox_texts()
    finally:
        bot.terminate()
        bot.wait(timeout=10)


def _bound_key(e2e_server, member_id: str, capabilities: list[str]) -> str:
    out = e2e_server.shell(
        "import json\nfrom meshes import selectors, services\nfrom meshes.models import Mesh\n"
        f"mesh = Mesh.objects.get(pk={e2e_server.invite['meshId']!r})\n"
        "actor = selectors.actor_for_user(mesh_id=mesh.id, user=mesh.owner)\n"
        f"_, secret = services.api_key_create(actor=actor, label='bot', capabilities={capabilities!r}, "
        f"member_id={member_id!r})\nprint(json.dumps(secret))"
    )
    return json.loads(out.strip().splitlines()[-1])


def test_a_bot_posts_to_a_topic_and_reads_its_dms_over_rest(e2e_server, make_peer, tmp_path):
    alice = join(e2e_server, make_peer, "alice")
    entry = Mesh.join(_link(e2e_server), name="rest-bot", config_dir=tmp_path / "bot")
    secret = _bound_key(e2e_server, entry.member_id, ["send", "read"])

    async def seal() -> dict:  # the keyring lives on the WebSocket; sealing is local
        async with Mesh.open(config_dir=tmp_path / "bot") as mesh:
            return await mesh.seal("#general", "status: all green")

    envelope = asyncio.run(seal())
    alice.run("send", "rest-bot", "hello bot")  # the bot is offline now: it waits in its queue
    with RestClient(e2e_server.http_url, secret) as rest:
        message_id = rest.post_message(envelope, topic="general")["messageId"]
        page = rest.inbox()

        async def open_all() -> list[str]:  # a direct message opens with the member key alone
            return [(await Mesh.open(config_dir=tmp_path / "bot").open_push(p)).plaintext for p in page["messages"]]

        opened = asyncio.run(open_all())
        assert rest.ack([push["messageId"] for push in page["messages"]]) == len(page["messages"])
        assert rest.inbox()["messages"] == []
    assert "hello bot" in opened
    history = alice.json("topic", "history", "general")["messages"]
    assert any(m["text"] == "status: all green" and m["senderName"] == "rest-bot" for m in history)
    read_only = _bound_key(e2e_server, entry.member_id, ["read"])
    with RestClient(e2e_server.http_url, read_only) as rest:
        with pytest.raises(Exception) as refused:
            rest.post_message({"nonce": "n", "ciphertext": "c"}, topic="general")
    assert refused.value.status == 403 and refused.value.code == "api_key_missing_capability"
    assert message_id
