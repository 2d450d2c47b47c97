"""`claudemesh topic …`, `send '#name'`, topics in `inbox`/`watch`, and the MCP `topics` tool with topic messages in
`check_messages` and channel notifications, against a real server process (client.md §1.5, §7)."""

from __future__ import annotations

import asyncio

import pytest

from tests.support.mcp_client import mcp_session

pytestmark = pytest.mark.slow


def join(e2e_server, make_peer, name: str):
    peer = make_peer(name)
    peer.run("join", f"{e2e_server.http_url}/i/{e2e_server.invite['code']}", "--name", name)
    return peer


def test_topic_verbs_send_and_read_an_encrypted_topic(e2e_server, make_peer):
    alice, bob = join(e2e_server, make_peer, "alice"), join(e2e_server, make_peer, "bob")
    created = alice.json("topic", "create", "Plans", "--description", "what we ship")
    assert created["name"] == "plans" and created["created"] is True and len(created["id"]) >= 20
    assert alice.json("topic", "create", "plans")["created"] is False
    assert bob.json("topic", "join", "#plans") == {"joined": "#plans"}
    bob.watch()
    sent = alice.json("send", "#plans", "ship it friday")
    assert sent["targetSpec"] == f"#{created['id']}" and sent["label"] == "#plans"
    record = bob.wait_for_text("ship it friday")
    assert record["topic"] == "plans" and record["kind"] == "topic" and record["decryptError"] is None
    listed = {t["name"]: t for t in bob.json("topic", "list")["topics"]}
    assert listed["plans"]["memberCount"] == 2 and listed["plans"]["unread"] == 1
    assert bob.json("topic", "read", "plans") == {"read": "plans"}
    assert {t["name"]: t for t in bob.json("topic", "list")["topics"]}["plans"]["unread"] == 0
    history = bob.json("topic", "history", "plans")
    assert [m["text"] for m in history["messages"]] == ["ship it friday"]
    assert history["messages"][0]["senderName"] == "alice" and history["messages"][0]["encrypted"] is True
    human = bob.run("topic", "history", "plans").stdout
    assert "alice" in human and "ship it friday" in human
    members = bob.json("topic", "members", "plans")["members"]
    assert sorted((m["displayName"], m["role"]) for m in members) == [("alice", "lead"), ("bob", "member")]
    inbox = bob.run("inbox", "--local", "--all", "--peek").stdout
    assert "[#plans]" in inbox and "ship it friday" in inbox
    assert bob.json("topic", "leave", "plans") == {"left": "plans"}
    missing = bob.run("topic", "history", "nope", check=False)
    assert missing.returncode == 5 and 'topic "nope" not found' in missing.stderr
    refused = bob.run("send", "#nope", "x", check=False)
    assert refused.returncode == 5 and "topics: #general" in refused.stderr


def test_the_mcp_topics_tool_and_topic_messages_in_channels(e2e_server, make_peer):
    carol, dave = join(e2e_server, make_peer, "carol"), join(e2e_server, make_peer, "dave")
    dave.watch()

    async def scenario():
        async with mcp_session(carol.env) as mcp:
            call = mcp.call
            await mcp.wait_open()
            text, error = await call("send_message", {"to": "#general", "message": "standup in 5"})
            assert text.startswith("✓ #general") and not error, text
            dave.wait_for_text("standup in 5")
            text, error = await call("topics")
            assert "#general (3 members" in text and not error  # the owner, carol, dave
            dave.run("send", "#general", "on my way")
            note = await mcp.next_message()
            assert note.content == "dave in #general: on my way" and note.meta["topic"] == "general"
            text, error = await call("check_messages")
            assert "in #general from dave" in text and "on my way" in text
            text, error = await call("topics", {"topic": "general"})
            assert text.index("carol (id") < text.index("dave (id") and "standup in 5" in text and "on my way" in text
            text, error = await call("topics", {"topic": "nope"})
            assert error and 'topic "nope" not found' in text

    asyncio.run(scenario())
