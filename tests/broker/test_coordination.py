"""Shared state, memory, tasks and mesh_info on the wire (protocol.md §5.4–5.6, §5.8): the frames as the reference
CLI sends them get §5's replies, and our sealed records (real keys, real signatures) are stored as ciphertext only,
compared-and-set, found by blind tokens and announced to the other connections."""

from __future__ import annotations

import json

import pytest

from meshes.models import Memory, StateEntry, Task
from protocol.keyring import new_scope_key
from protocol.records import blind_tokens, open_record, parse_sealed, seal_record, search_key
from tests.support.sockets import db

pytestmark = pytest.mark.django_db(transaction=True)
KEY = new_scope_key()


async def request(sock, frame: dict, reply_type: str, req_id: str | None = None) -> dict:
    req_id = req_id or f"r-{frame['type']}"
    await sock.send({**frame, "_reqId": req_id})
    return await sock.expect(lambda f: f.get("_reqId") == req_id and f["type"] in (reply_type, "error"))


def sealed(identity, value, *, kind: str, name: str | None) -> dict:
    return seal_record(value, kind=kind, name=name, mesh_id=identity.member.mesh_id, epoch=1, key=KEY,
                       author=identity.keypair).as_wire()


def opened(record: dict, identity, *, kind: str, name: str | None):
    envelope, nonce = parse_sealed(record)
    return open_record(envelope, nonce, kind=kind, name=name, mesh_id=identity.member.mesh_id, key=KEY)


# --- shared state -----------------------------------------------------------------------------------------


async def test_reference_state_frames_get_the_spec_replies_and_set_state_answers_nothing(make_member, connect):
    alice, bob = await db(make_member)("alice"), await db(make_member)("bob")
    a, b = await connect(alice), await connect(bob)
    await a.send({"type": "set_state", "key": "build", "value": {"ok": True, "n": 3}})  # as the reference CLI does
    change = await b.expect("state_change")
    assert (change["key"], change["value"], change["updatedBy"]) == ("build", {"ok": True, "n": 3}, "alice")
    await a.expect_nothing(lambda f: f.get("type") in ("state_result", "state_change", "state_stored", "error"))
    got = await request(b, {"type": "get_state", "key": "build"}, "state_result")
    assert got["value"] == {"ok": True, "n": 3} and got["updatedBy"] == "alice" and got["updatedAt"].endswith("Z")
    assert got["version"] == 1 and got["encrypted"] is False
    missing = await request(b, {"type": "get_state", "key": "nope"}, "state_result")
    assert {k: missing[k] for k in ("key", "value", "updatedBy", "updatedAt")} == {
        "key": "nope", "value": None, "updatedBy": "", "updatedAt": ""
    }
    await b.send({"type": "set_state", "key": "alpha", "value": "x"})
    await a.expect("state_change")
    listed = await request(a, {"type": "list_state"}, "state_list")
    assert [e["key"] for e in listed["entries"]] == ["alpha", "build"]
    assert listed["entries"][0]["updatedBy"] == "bob"


async def test_sealed_state_is_ciphertext_in_the_database_and_compare_and_set_refuses_a_blind_overwrite(
    make_member, connect
):
    alice, bob = await db(make_member)("alice"), await db(make_member)("bob")
    a, b = await connect(alice), await connect(bob)
    record = sealed(alice, {"owner": "alice", "plan": "ship friday"}, kind="state", name="release")
    stored = await request(a, {"type": "set_state", "key": "release", "sealed": record, "expectedVersion": 0},
                           "state_stored")
    assert stored["version"] == 1
    change = await b.expect("state_change")
    assert change["value"] is None and change["encrypted"] is True and change["version"] == 1
    assert opened(change["sealed"], alice, kind="state", name="release") == {"owner": "alice", "plan": "ship friday"}
    row = await db(StateEntry.objects.get)(key="release")
    assert "ship friday" not in json.dumps([row.value, row.sealed]) and row.value is None
    # bob read version 1; alice writes version 2 meanwhile; bob's write naming version 1 is refused
    await request(a, {"type": "set_state", "key": "release", "sealed": record, "expectedVersion": 1}, "state_stored")
    bobs = sealed(bob, "bob's plan", kind="state", name="release")
    refused = await request(b, {"type": "set_state", "key": "release", "sealed": bobs, "expectedVersion": 1},
                            "state_stored")
    assert refused["type"] == "error" and refused["code"] == "version_conflict" and refused["currentVersion"] == 2
    assert (await db(StateEntry.objects.get)(key="release")).version == 2
    taken = await request(b, {"type": "set_state", "key": "fresh", "sealed": bobs, "expectedVersion": 0},
                          "state_stored")
    assert taken["type"] == "state_stored"
    again = await request(a, {"type": "set_state", "key": "fresh", "sealed": record, "expectedVersion": 0},
                          "state_stored")
    assert again["code"] == "version_conflict" and again["currentVersion"] == 1


async def test_a_sealed_value_must_be_signed_by_the_writer_and_bad_state_input_is_refused(make_member, connect):
    alice, bob = await db(make_member)("alice"), await db(make_member)("bob")
    a = await connect(alice)
    forged = sealed(bob, "pretending", kind="state", name="k")  # bob's signature, sent by alice
    for frame in (
        {"type": "set_state", "key": "k", "sealed": forged, "confirm": True},
        {"type": "set_state", "key": "k", "sealed": {"nonce": "x", "ciphertext": "y"}, "confirm": True},
        {"type": "set_state", "key": "", "value": 1, "confirm": True},
        {"type": "set_state", "key": "k", "value": "nul \u0000 inside", "confirm": True},
        {"type": "set_state", "key": "k", "value": 1, "expectedVersion": "two", "confirm": True},
        {"type": "set_state", "key": "k", "confirm": True},
    ):
        reply = await request(a, frame, "state_stored")
        assert reply["type"] == "error" and reply["code"] == "invalid_args", frame
    assert await db(StateEntry.objects.count)() == 0


# --- memory -----------------------------------------------------------------------------------------------


async def test_plaintext_memories_are_found_by_full_text_search_and_forget_is_a_soft_delete(make_member, connect):
    alice = await db(make_member)("alice")
    a = await connect(alice)
    stored = await request(a, {"type": "remember", "content": "The deploy script needs the staging token",
                               "tags": ["ops"]}, "memory_stored")
    await request(a, {"type": "remember", "content": "Lunch is at noon"}, "memory_stored")
    found = await request(a, {"type": "recall", "query": "deploying staging"}, "memory_results")
    assert [m["id"] for m in found["memories"]] == [stored["id"]]
    memory = found["memories"][0]
    assert memory["tags"] == ["ops"] and memory["rememberedBy"] == "alice" and memory["encrypted"] is False
    assert set(memory) >= {"id", "content", "tags", "rememberedBy", "rememberedAt"}
    await a.send({"type": "forget", "memoryId": stored["id"], "_reqId": "f1"})
    forgot = await a.expect(lambda f: f.get("_reqId") == "f1")
    assert forgot["type"] == "ack" and forgot["id"] == stored["id"] and forgot["queued"] is False
    assert forgot["forgotten"] is True
    await a.send({"type": "forget", "memoryId": stored["id"], "_reqId": "f2"})
    assert (await a.expect(lambda f: f.get("_reqId") == "f2"))["forgotten"] is False  # same reply shape, says so
    assert (await request(a, {"type": "recall", "query": "staging"}, "memory_results"))["memories"] == []
    assert (await db(Memory.objects.get)(id=stored["id"])).forgotten_at is not None


async def test_sealed_memories_are_found_by_blind_tokens_and_the_rows_hold_no_words(make_member, connect):
    alice, bob = await db(make_member)("alice"), await db(make_member)("bob")
    a, b = await connect(alice), await connect(bob)
    tokens_key = search_key(KEY)
    texts = ["postgres failover runbook lives in ops/db.md", "the frontend build uses vite", "failover drills monthly"]
    ids = []
    for text in texts:
        frame = {"type": "remember", "sealed": sealed(alice, {"content": text, "tags": []}, kind="memory", name=None),
                 "tokens": blind_tokens(text, tokens_key)}
        ids.append((await request(a, frame, "memory_stored"))["id"])
    found = await request(b, {"type": "recall", "tokens": blind_tokens("postgres failover", tokens_key)},
                          "memory_results")
    assert [m["id"] for m in found["memories"]] == [ids[0], ids[2]]  # two words matched, then one
    assert found["memories"][0]["score"] == 2 and found["memories"][0]["content"] is None
    assert opened(found["memories"][0]["sealed"], alice, kind="memory", name=None)["content"] == texts[0]
    rows = await db(lambda: list(Memory.objects.values("content", "sealed", "tags")))()
    assert not any(word in json.dumps(rows) for word in ("postgres", "failover", "vite", "runbook"))
    wrong = await request(b, {"type": "recall", "tokens": ["not-a-token"]}, "memory_results")
    assert wrong["type"] == "error" and wrong["code"] == "invalid_args"


# --- tasks ------------------------------------------------------------------------------------------------


async def test_reference_task_frames_claim_once_and_every_other_connection_hears_of_it(make_member, connect):
    alice, bob, carol = [await db(make_member)(name) for name in ("alice", "bob", "carol")]
    a, b, c = await connect(alice), await connect(bob), await connect(carol)
    created = await request(a, {"type": "create_task", "title": "fix flaky test", "priority": "high",
                                "assignee": "bob", "tags": ["ci"]}, "task_created")
    assert len(created["id"]) == 32
    event = await b.expect_event("task_created")
    assert event["eventData"]["taskId"] == created["id"] and event["eventData"]["by"] == "alice"
    claimed = await request(b, {"type": "claim_task", "taskId": created["id"]}, "task_list")
    task = next(t for t in claimed["tasks"] if t["id"] == created["id"])
    assert (task["status"], task["claimedBy"], task["assignee"], task["priority"], task["createdBy"]) == (
        "claimed", "bob", "bob", "high", "alice"
    )
    assert (await c.expect_event("task_claimed"))["eventData"]["by"] == "bob"
    second = await request(c, {"type": "claim_task", "taskId": created["id"]}, "task_list")
    assert (second["type"], second["code"], second["message"]) == (
        "error", "task_not_claimable", "task is not open or does not exist"
    )
    done = await request(b, {"type": "complete_task", "taskId": created["id"], "result": "retry added"}, "task_list")
    assert done["task"]["status"] == "done" and done["task"]["result"] == "retry added"
    assert (await a.expect_event("task_done"))["eventData"]["taskId"] == created["id"]
    missing = await request(b, {"type": "complete_task", "taskId": "x" * 32}, "task_list")
    assert (missing["code"], missing["message"]) == ("task_not_found", "task not found in this mesh")
    by_prefix = await request(a, {"type": "create_task", "title": "short ids"}, "task_created")
    short = await request(c, {"type": "claim_task", "taskId": by_prefix["id"][:8]}, "task_list")
    assert short["task"]["id"] == by_prefix["id"] and short["task"]["claimedBy"] == "carol"  # the id the CLI prints
    await db(lambda: [Task.objects.create(id=f"Twin{n}" + "x" * 27, mesh_id=alice.member.mesh_id, title="t")
                      for n in (1, 2)])()
    twins = await request(c, {"type": "claim_task", "taskId": "Twin"}, "task_list")  # under 6 characters: none
    assert twins["code"] == "task_not_claimable"
    await db(lambda: [Task.objects.create(id=f"TwinsA{n}" + "x" * 25, mesh_id=alice.member.mesh_id, title="t")
                      for n in (1, 2)])()
    ambiguous = await request(c, {"type": "claim_task", "taskId": "TwinsA"}, "task_list")
    assert ambiguous["code"] == "ambiguous" and "several tasks start with TwinsA" in ambiguous["message"]
    open_only = await request(a, {"type": "list_tasks", "status": "open", "assignee": "bob"}, "task_list")
    assert open_only["tasks"] == []
    by_bob = await request(a, {"type": "list_tasks", "assignee": "bob"}, "task_list")
    assert [t["id"] for t in by_bob["tasks"]] == [created["id"]]
    bad = await request(a, {"type": "list_tasks", "status": "finished"}, "task_list")
    assert bad["code"] == "invalid_args"


async def test_sealed_task_titles_and_results_never_reach_the_database(make_member, connect):
    alice = await db(make_member)("alice")
    a = await connect(alice)
    title = sealed(alice, "rotate the prod database password", kind="task", name=None)
    created = await request(a, {"type": "create_task", "sealed": title}, "task_created")
    assert created["task"]["title"] is None and created["task"]["encrypted"] is True
    result = sealed(alice, "rotated; new one in the vault", kind="task_result", name=created["id"])
    done = await request(a, {"type": "complete_task", "taskId": created["id"], "resultSealed": result}, "task_list")
    assert opened(done["task"]["resultSealed"], alice, kind="task_result", name=created["id"]).startswith("rotated")
    row = await db(lambda: list(Task.objects.values()))()
    assert "password" not in json.dumps(row, default=str) and "vault" not in json.dumps(row, default=str)


# --- mesh_info --------------------------------------------------------------------------------------------


async def test_mesh_info_lists_exactly_the_spec_fields(make_member, connect):
    alice, bob = await db(make_member)("alice"), await db(make_member)("bob")
    a = await connect(alice)
    await connect(bob)
    await a.send({"type": "join_group", "name": "backend", "role": "lead"})
    await a.send({"type": "set_state", "key": "k", "value": 1})
    await request(a, {"type": "remember", "content": "one"}, "memory_stored")
    await request(a, {"type": "create_task", "title": "t"}, "task_created")
    info = await request(a, {"type": "mesh_info"}, "mesh_info_result")
    assert set(info) == {
        "type", "_reqId", "mesh", "peers", "groups", "stateKeys", "memoryCount", "fileCount", "tasks", "streams",
        "tables", "collections", "yourName", "yourGroups",
    }
    assert info["mesh"] == alice.member.mesh_id and info["peers"] == 2 and info["groups"] == ["@backend"]
    assert info["stateKeys"] == ["k"] and info["memoryCount"] == 1 and info["fileCount"] == 0
    assert info["tasks"] == {"open": 1, "claimed": 0, "done": 0}
    assert (info["streams"], info["tables"], info["collections"]) == ([], [], [])
    assert info["yourName"] == "alice" and info["yourGroups"] == [{"name": "backend", "role": "lead"}]


async def test_text_no_database_can_store_gets_invalid_args_or_a_plain_no_never_an_internal_error(make_member, connect):
    alice = await db(make_member)("alice")
    a = await connect(alice)
    for bad in ("nul \u0000 inside", "lone \ud800 surrogate"):
        for frame, reply in (
            ({"type": "get_state", "key": bad}, "state_result"),
            ({"type": "set_state", "key": bad, "value": 1, "confirm": True}, "state_stored"),
            ({"type": "recall", "query": bad}, "memory_results"),
            ({"type": "remember", "content": bad}, "memory_stored"),
            ({"type": "create_task", "title": bad}, "task_created"),
            ({"type": "list_tasks", "assignee": bad}, "task_list"),
            ({"type": "claim_task", "taskId": bad}, "task_list"),
            ({"type": "schedule", "to": "*", "message": bad, "deliverAt": 0}, "scheduled_ack"),
            ({"type": "schedule", "to": "*", "message": "x", "cron": "0 9 * * *", "timeZone": bad}, "scheduled_ack"),
        ):
            answer = await request(a, frame, reply)
            assert answer["type"] == "error" and answer["code"] in ("invalid_args", "task_not_claimable"), (frame, answer)
        cancelled = await request(a, {"type": "cancel_scheduled", "scheduledId": bad}, "cancel_scheduled_ack")
        assert cancelled["ok"] is False
        forgot = await request(a, {"type": "forget", "memoryId": bad}, "ack")
        assert forgot["forgotten"] is False
