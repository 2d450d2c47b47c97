"""`claudemesh webhook create|list|delete` against a real server process, and what a member sees of a POST: a
message "from webhook <name>" with the posted JSON, live in a watch and from the queue in a later inbox."""

from __future__ import annotations

import hashlib
import hmac
import json

import httpx
import pytest

from tests.peer.test_moderation_verbs import promote
from tests.peer.test_topic_verbs import join

pytestmark = pytest.mark.slow


def test_a_webhook_post_reaches_a_watch_and_an_offline_member_s_inbox(e2e_server, make_peer):
    alice, bob = join(e2e_server, make_peer, "alice"), join(e2e_server, make_peer, "bob")
    promote(e2e_server, "alice")
    refused = bob.run("webhook", "create", "ci", check=False)
    assert refused.returncode == 7
    created = alice.json("webhook", "create", "ci", "--signed")
    assert "/hook/" in created["url"] and len(created["signingSecret"]) == 64
    alice.watch()
    body = json.dumps({"build": 42, "status": "green"}).encode()
    signature = "sha256=" + hmac.new(created["signingSecret"].encode(), body, hashlib.sha256).hexdigest()
    posted = httpx.post(created["url"], content=body, headers={"X-Hub-Signature-256": signature,
                                                                "Content-Type": "application/json"}, timeout=10)
    assert posted.status_code == 200 and posted.json()["ok"] is True
    record = alice.wait_for_text('{"build": 42, "status": "green"}')
    assert record["senderName"] == "webhook ci" and record["kind"] == "webhook"
    bob.run("inbox", "--wait", "2")  # bob was offline: it waited in his queue
    assert '{"build": 42, "status": "green"}' in bob.inbox_texts()
    shown = bob.run("inbox", "--all", "--local", "--peek").stdout
    assert "webhook ci [webhook]" in shown and '"build": 42' in shown
    assert [w["name"] for w in alice.json("webhook", "list")["webhooks"]] == ["ci"]
    alice.run("webhook", "delete", "ci")
    assert httpx.post(created["url"], content=body, timeout=10).status_code == 401
