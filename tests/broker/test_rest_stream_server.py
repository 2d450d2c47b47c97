"""`GET /api/v1/stream` against a real server process: a bot follows its inbox and a topic as server-sent events,
the server restarts, and the bot resumes with `Last-Event-ID`, missing nothing and getting nothing twice."""

from __future__ import annotations

import json
import time

import httpx
import pytest

from tests.support.servers import ServerProcess, free_port, manage, migrate, server_env

pytestmark = pytest.mark.slow

SETUP = """
import json
from accounts.models import User
from meshes import selectors, services
from meshes.models import Member
from protocol.crypto import SigningKeypair
owner = User.objects.create_user(username="o@example.test", email="o@example.test", password="x")
mesh = services.mesh_create(owner=owner, name="Stream Mesh")
bot = Member.objects.create(mesh=mesh, pubkey=SigningKeypair.generate().public_hex, display_name="bot")
services.topic_subscribe_general(member=bot)
actor = selectors.actor_for_user(mesh_id=mesh.id, user=owner)
_, secret = services.api_key_create(actor=actor, label="bot", capabilities=["send", "read"], member_id=bot.id)
print(json.dumps({"secret": secret, "bot": bot.id}))
"""


def _events(response: httpx.Response, count: int, timeout: float = 20) -> list[dict]:
    """The next `count` events of an open stream: {id, event, data}."""
    events, current = [], {}
    deadline = time.monotonic() + timeout
    for line in response.iter_lines():
        if time.monotonic() > deadline:
            break
        if line == "":
            if "data" in current:
                events.append(current)
                if len(events) == count:
                    return events
            current = {}
        elif line.startswith(("id:", "event:", "data:")):
            field, _, value = line.partition(":")
            current[field] = json.loads(value) if field == "data" else value.strip()
    raise AssertionError(f"got {events} of {count} events")


def _post(base: str, secret: str, text: str) -> str:
    answer = httpx.post(f"{base}/api/v1/topics/general/messages", headers={"Authorization": f"Bearer {secret}"},
                        json={"nonce": "bm9uY2U=", "ciphertext": text}, timeout=10)
    assert answer.status_code == 201, answer.text
    return answer.json()["messageId"]


def test_the_stream_resumes_after_a_server_restart_without_missing_a_message(tmp_path):
    port = free_port()
    env = server_env(tmp_path, port, API_STREAM_POLL_SECONDS="0.2")
    migrate(env)
    setup = json.loads(manage(env, "shell", "-c", SETUP).strip().splitlines()[-1])
    auth = {"Authorization": f"Bearer {setup['secret']}"}
    server = ServerProcess(port=port, env=env, log_path=tmp_path / "server.log").start()
    try:
        base = server.http_url
        with httpx.stream("GET", f"{base}/api/v1/stream", headers=auth, timeout=30) as response:
            assert response.status_code == 200 and response.headers["content-type"].startswith("text/event-stream")
            first = _post(base, setup["secret"], "one")
            [event] = _events(response, 1)
        assert event["event"] == "topic_message" and event["data"]["id"] == first
        last_seen = event["id"]
        server.stop()
        server = ServerProcess(port=port, env=env, log_path=tmp_path / "server.log").start()
        later = [_post(base, setup["secret"], text) for text in ("two", "three")]
        with httpx.stream("GET", f"{base}/api/v1/stream", headers={**auth, "Last-Event-ID": last_seen},
                          timeout=30) as response:
            resumed = _events(response, 2)
        assert [e["data"]["id"] for e in resumed] == later
        assert [e["data"]["ciphertext"] for e in resumed] == ["two", "three"]
    finally:
        server.stop()
