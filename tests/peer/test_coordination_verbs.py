"""`claudemesh state|remember|recall|forget|task|remind|schedule|info` against a real server process: what one
member writes another reads in the clear, while the server's rows hold only ciphertext (client.md §1.5,
protocol.md §5.4–5.8)."""

from __future__ import annotations

import asyncio
import json
import time

import pytest

from tests.peer.test_topic_verbs import join
from tests.support.mcp_client import mcp_session

pytestmark = pytest.mark.slow

ROWS = (
    "import json; from meshes.models import StateEntry, Memory, Task, ScheduledMessage; "
    "print(json.dumps([list(M.objects.values()) for M in (StateEntry, Memory, Task, ScheduledMessage)], default=str))"
)


def stored_rows(e2e_server) -> str:
    return e2e_server.shell(ROWS).strip().splitlines()[-1]


def test_shared_state_is_sealed_compared_and_set_and_read_by_another_member(e2e_server, make_peer):
    alice, bob = join(e2e_server, make_peer, "alice"), join(e2e_server, make_peer, "bob")
    stored = alice.json("state", "set", "release", '{"day": "friday", "owner": "alice"}')
    assert stored == {"key": "release", "version": 1, "encrypted": True}
    got = bob.json("state", "get", "release")
    assert got["value"] == {"day": "friday", "owner": "alice"} and got["updatedBy"] == "alice" and got["failure"] is None
    assert "release = " in bob.run("state", "get", "release").stdout
    assert "(not set)" in bob.run("state", "get", "nothing").stdout
    conflict = bob.run("state", "set", "release", "monday", "--expect-version", "0", "--json", check=False)
    assert conflict.returncode == 6 and "version_conflict" in conflict.stdout
    assert bob.json("state", "set", "release", "monday", "--expect-version", "1")["version"] == 2
    assert [(e["key"], e["value"]) for e in alice.json("state", "list")["entries"]] == [("release", "monday")]
    assert "friday" not in stored_rows(e2e_server) and "monday" not in stored_rows(e2e_server)


def test_memories_are_recalled_by_word_without_the_server_reading_them(e2e_server, make_peer):
    alice, bob = join(e2e_server, make_peer, "alice"), join(e2e_server, make_peer, "bob")
    first = alice.json("remember", "the", "staging", "database", "lives", "on", "db-2", "--tags", "ops,postgres")
    alice.json("remember", "lunch", "orders", "go", "in", "before", "noon")
    found = bob.json("recall", "staging", "databases")["memories"]
    assert [m["id"] for m in found] == [first["id"]]
    assert found[0]["content"] == "the staging database lives on db-2" and found[0]["tags"] == ["ops", "postgres"]
    assert found[0]["rememberedBy"] == "alice" and found[0]["encrypted"] is True
    by_tag = bob.json("recall", "postgres")["memories"]
    assert [m["id"] for m in by_tag] == [first["id"]]
    rows = stored_rows(e2e_server)
    assert not any(word in rows for word in ("staging", "db-2", "lunch", "postgres"))
    assert bob.json("forget", first["id"]) == {"id": first["id"], "forgotten": True}
    assert bob.json("recall", "staging")["memories"] == []
    again = bob.run("forget", first["id"], check=False)
    assert again.returncode == 5 and "already forgotten" in again.stderr


def test_tasks_are_claimed_once_and_their_titles_and_results_stay_sealed(e2e_server, make_peer):
    alice, bob = join(e2e_server, make_peer, "alice"), join(e2e_server, make_peer, "bob")
    task = alice.json("task", "create", "fix", "the", "flaky", "deploy", "test", "--priority", "high",
                      "--assignee", "bob", "--tags", "ci")
    listed = bob.json("task", "list", "--assignee", "bob")["tasks"]
    assert [(t["id"], t["title"], t["status"], t["priority"]) for t in listed] == [
        (task["id"], "fix the flaky deploy test", "open", "high")
    ]
    assert task["id"][:8] in bob.run("task", "list").stdout  # the human list prints short ids
    claimed = bob.json("task", "claim", task["id"][:8])
    assert claimed["status"] == "claimed" and claimed["claimedBy"] == "bob"
    lost = alice.run("task", "claim", task["id"], check=False)
    assert lost.returncode == 1 and "task is not open or does not exist" in lost.stderr
    done = bob.json("task", "complete", task["id"], "added", "a", "retry")
    assert done["status"] == "done" and done["result"] == "added a retry"
    assert [t["result"] for t in alice.json("task", "list", "--status", "done")["tasks"]] == ["added a retry"]
    rows = stored_rows(e2e_server)
    assert "flaky" not in rows and "retry" not in rows


def test_a_reminder_reaches_the_members_long_lived_session_and_stays_sealed(e2e_server, make_peer):
    alice = join(e2e_server, make_peer, "alice")
    alice.watch()  # the long-lived session; the `remind` run below is a one-shot connection that exits
    ack = alice.json("remind", "2s", "check", "the", "oven")
    assert ack["encrypted"] is True and ack["deliverAt"] > time.time() * 1000
    record = alice.wait_for_text("check the oven")
    assert record["subtype"] == "reminder" and record["senderName"] == "alice"
    cron = alice.json("remind", "standup", "notes", "--cron", "30 9 * * 1-5", "--tz", "Europe/Berlin")
    assert cron["cron"] == "30 9 * * 1-5" and cron["timeZone"] == "Europe/Berlin"
    listed = alice.json("schedule", "list")["scheduled"]
    assert [(e["id"], e["text"], e["cron"]) for e in listed] == [(cron["scheduledId"], "standup notes", "30 9 * * 1-5")]
    assert "standup notes" in alice.run("remind", "list").stdout
    rows = stored_rows(e2e_server)
    assert "oven" not in rows and "standup" not in rows
    assert alice.json("schedule", "cancel", cron["scheduledId"])["ok"] is True
    assert alice.json("remind", "list")["scheduled"] == []
    bad = alice.run("remind", "soon-ish", "x", check=False)
    assert bad.returncode == 3
    bad_cron = alice.run("remind", "x", "--cron", "0 9 * * 7", check=False)
    assert bad_cron.returncode == 3 and "Invalid cron expression" in bad_cron.stderr


def test_info_shows_the_mesh_at_a_glance(e2e_server, make_peer):
    alice = join(e2e_server, make_peer, "alice")
    alice.json("state", "set", "k", "1")
    alice.json("task", "create", "one")
    info = alice.json("info")
    assert info["yourName"] == "alice" and info["stateKeys"] == ["k"] and info["tasks"]["open"] == 1
    assert set(info) >= {"mesh", "peers", "groups", "memoryCount", "fileCount", "streams", "tables", "collections"}
    assert "state keys 1" in alice.run("info").stdout
    json.dumps(info)


def test_the_mcp_coordination_tools_and_state_change_notifications(e2e_server, make_peer):
    carol, dave = join(e2e_server, make_peer, "carol"), join(e2e_server, make_peer, "dave")

    async def scenario():
        async with mcp_session(carol.env) as mcp:
            call = mcp.call
            await mcp.wait_open()
            text, error = await call("state", {"action": "set", "key": "frozen", "value": {"branch": "main"},
                                               "expected_version": 0})
            assert text == "✓ frozen set (version 1)" and not error
            text, error = await call("state", {"action": "set", "key": "frozen", "value": "x", "expected_version": 0})
            assert error and "version_conflict" in text
            dave.json("state", "set", "frozen", '"release/1.2"', "--expect-version", "1")
            note = await _next_system(mcp, "state_change")
            assert note.content == '[state] frozen = "release/1.2" (set by dave)'
            text, _ = await call("state", {"action": "get", "key": "frozen"})
            assert text.startswith('frozen = "release/1.2" (version 2, set by dave')
            text, error = await call("remember", {"content": "the flaky test is test_upload_resume", "tags": ["ci"]})
            assert text.startswith("✓ remembered (id ") and not error
            memory_id = text.split("id ")[1].rstrip(")")
            text, _ = await call("recall", {"query": "flaky upload"})
            assert "the flaky test is test_upload_resume [ci] — carol" in text
            text, _ = await call("recall", {"forget": memory_id})
            assert text == f"✓ forgot {memory_id}"
            text, _ = await call("tasks", {"action": "create", "title": "bisect the regression", "priority": "high"})
            task_id = text.split("(id ")[1].split(",")[0]
            dave_claim = dave.json("task", "claim", task_id)
            assert dave_claim["claimedBy"] == "dave"
            assert "claimed task" in (await _next_system(mcp, "task_claimed")).content
            text, error = await call("tasks", {"action": "claim", "id": task_id})
            assert error and "task_not_claimable" in text
            text, _ = await call("tasks", {"action": "list", "status": "claimed"})
            assert "[claimed] bisect the regression" in text and "claimed by dave" in text
            text, error = await call("remind", {"text": "stretch", "when": "1s"})
            assert text.startswith("✓ scheduled for") and not error
            note = await mcp.next_message()
            assert note.content.endswith("stretch") and note.meta.get("subtype") == "reminder"
            text, _ = await call("mesh_info")
            assert "state keys frozen" in text and "You are carol" in text

    asyncio.run(scenario())


async def _next_system(mcp, event: str, timeout: float = 20):
    while True:
        note = await asyncio.wait_for(mcp.received.get(), timeout)
        if note.meta.get("kind") == "system" and note.meta.get("event") == event:
            return note


def test_a_member_who_joins_later_reads_old_values_once_a_holder_shares_the_key(e2e_server, make_peer):
    alice = join(e2e_server, make_peer, "alice")
    alice.json("state", "set", "owner", '"alice"')
    alice.json("remember", "the", "release", "checklist", "is", "in", "docs/release.md")
    alice.watch()  # a long-lived session of a holder: it answers key requests
    carol = join(e2e_server, make_peer, "carol")  # joined after the values were sealed: holds no key yet
    assert carol.json("state", "get", "owner")["value"] == "alice"
    assert [m["content"] for m in carol.json("recall", "release", "checklist")["memories"]] == [
        "the release checklist is in docs/release.md"
    ]


def test_a_reminder_to_someone_else_is_sealed_to_them_and_arrives_from_the_member(e2e_server, make_peer):
    alice, bob = join(e2e_server, make_peer, "alice"), join(e2e_server, make_peer, "bob")
    bob.watch()
    ack = alice.json("remind", "1s", "review", "the", "PR", "--to", "bob")
    assert ack["encrypted"] is True and len(ack["to"]) == 64
    record = bob.wait_for_text("review the PR")
    assert record["subtype"] == "reminder" and record["senderName"] == "alice" and record["decryptError"] is None
    assert "review the PR" not in stored_rows(e2e_server)
