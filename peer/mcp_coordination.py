"""The MCP tools for coordinating with the mesh: shared state, memory, tasks, reminders and the mesh overview. Each
description says when Claude should reach for it; each handler turns the client library's result into text."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import mcp_types as types

from peer.reminders import parse_when
from protocol.encoding import from_epoch_ms

if TYPE_CHECKING:
    from peer.client import MeshClient

MESH = {"mesh_slug": {"type": "string", "description": "which mesh (needed when you are in several)"}}

TOOLS = [
    types.Tool(
        name="state",
        description="Shared key/value state of the mesh, end-to-end encrypted: the place for facts every session "
                    "should agree on (who owns the release, which branch is frozen, a build's status). `get` a key, "
                    "`set` it (any JSON; pass `expected_version` from your last read so a teammate's change is "
                    "not overwritten blindly), or `list` all keys.",
        input_schema={"type": "object", "properties": {
            "action": {"type": "string", "enum": ["get", "set", "list"]},
            "key": {"type": "string"}, "value": {"description": "any JSON value (for set)"},
            "expected_version": {"type": "integer", "minimum": 0, "description": "0 = only if the key is unset"},
            **MESH,
        }, "required": ["action"]},
    ),
    types.Tool(
        name="remember",
        description="Store a memory for the whole mesh (end-to-end encrypted): a decision, a gotcha, where "
                    "something lives. Other sessions find it later with `recall`.",
        input_schema={"type": "object", "properties": {
            "content": {"type": "string"}, "tags": {"type": "array", "items": {"type": "string"}}, **MESH,
        }, "required": ["content"]},
    ),
    types.Tool(
        name="recall",
        description="Search the mesh's memories by words before you ask a teammate or rediscover something. With "
                    "`forget` = a memory id, forget that memory instead.",
        input_schema={"type": "object", "properties": {
            "query": {"type": "string"}, "forget": {"type": "string", "description": "a memory id to forget"}, **MESH,
        }},
    ),
    types.Tool(
        name="tasks",
        description="Shared tasks of the mesh, so two sessions never do the same work: `list` (filter by status or "
                    "assignee), `create` one, `claim` one before starting it (only one session wins a claim), "
                    "`complete` it with a result.",
        input_schema={"type": "object", "properties": {
            "action": {"type": "string", "enum": ["list", "create", "claim", "complete"]},
            "id": {"type": "string", "description": "task id (claim, complete)"},
            "title": {"type": "string"}, "result": {"type": "string"},
            "assignee": {"type": "string"}, "priority": {"type": "string"},
            "tags": {"type": "array", "items": {"type": "string"}},
            "status": {"type": "string", "enum": ["open", "claimed", "done"]}, **MESH,
        }, "required": ["action"]},
    ),
    types.Tool(
        name="remind",
        description="Schedule a reminder to yourself (or a message to someone, `to`) for later: `when` = 30m, 2h, "
                    "1d, 09:30 or an ISO time, or `cron` (5 fields, day-of-week 0-6) for a repeating one. It arrives "
                    "as a message even if this session has ended. `action` list / cancel (with `id`) manage them.",
        input_schema={"type": "object", "properties": {
            "action": {"type": "string", "enum": ["schedule", "list", "cancel"], "default": "schedule"},
            "text": {"type": "string"}, "when": {"type": "string"}, "cron": {"type": "string"},
            "to": {"type": "string", "description": "default: yourself"}, "id": {"type": "string"}, **MESH,
        }},
    ),
    types.Tool(
        name="mesh_info",
        description="The mesh at a glance: sessions connected, groups, shared state keys, memory count, tasks by status.",
        input_schema={"type": "object", "properties": {**MESH}},
    ),
]


def _value(entry: dict[str, Any]) -> str:
    if entry["failure"] is not None:
        return f"⚠ {entry['failure']}"
    return json.dumps(entry["value"], ensure_ascii=False)


async def tool_state(client: MeshClient, args: dict[str, Any]) -> tuple[str, bool]:
    coordination, action, key = client.coordination, args.get("action"), args.get("key")
    if action == "list":
        entries = await coordination.state_list()
        lines = [f"- {e['key']} = {_value(e)} (v{e['version']}, by {e['updatedBy']})" for e in entries]
        return "\n".join(lines) or "No shared state yet.", False
    if not isinstance(key, str) or not key:
        return "`key` is required for get and set", True
    if action == "get":
        entry = await coordination.state_get(key)
        if not entry["set"]:
            return f"{key} is not set (set it with expected_version 0 to be sure nobody beat you to it).", False
        return f"{key} = {_value(entry)} (version {entry['version']}, set by {entry['updatedBy']} at " \
               f"{entry['updatedAt']})", False
    if action == "set":
        if "value" not in args:
            return "`value` is required for set", True
        expected = args.get("expected_version")
        stored = await coordination.state_set(key, args["value"], expected_version=expected if isinstance(
            expected, int) else None)
        return f"✓ {key} set (version {stored['version']})", False
    return "`action` must be get, set or list", True


async def tool_remember(client: MeshClient, args: dict[str, Any]) -> tuple[str, bool]:
    content, tags = args.get("content"), args.get("tags")
    if not isinstance(content, str) or not content.strip():
        return "`content` is required", True
    tags = [str(t) for t in tags] if isinstance(tags, list) else None
    stored = await client.coordination.remember(content, tags=tags)
    return f"✓ remembered (id {stored['id']})", False


async def tool_recall(client: MeshClient, args: dict[str, Any]) -> tuple[str, bool]:
    if isinstance(args.get("forget"), str) and args["forget"]:
        outcome = await client.coordination.forget(args["forget"])
        return (f"✓ forgot {args['forget']}", False) if outcome["forgotten"] is not False else (
            f"no memory {args['forget']} (or already forgotten)", True)
    query = args.get("query")
    if not isinstance(query, str) or not query.strip():
        return "`query` is required", True
    found = await client.coordination.recall(query)
    if not found:
        return f"Nothing remembered about {query!r}.", False
    lines = []
    for memory in found:
        body = memory["content"] if memory["failure"] is None else f"⚠ {memory['failure']}"
        tags = f" [{', '.join(memory['tags'])}]" if memory["tags"] else ""
        lines.append(f"- {body}{tags} — {memory['rememberedBy']}, {memory['rememberedAt']} (id {memory['id']})")
    return "\n".join(lines), False


def _task_line(task: dict[str, Any]) -> str:
    title = task.get("title") if task.get("failure") is None else f"⚠ {task['failure']}"
    parts = [f"[{task.get('status')}]", str(title), f"(id {task.get('id')}, {task.get('priority')}"]
    if task.get("assignee"):
        parts[-1] += f", for {task['assignee']}"
    if task.get("claimedBy"):
        parts[-1] += f", claimed by {task['claimedBy']}"
    if task.get("result"):
        parts[-1] += f", result: {task['result']}"
    return "- " + " ".join(parts) + ")"


async def tool_tasks(client: MeshClient, args: dict[str, Any]) -> tuple[str, bool]:
    coordination, action, task_id = client.coordination, args.get("action"), args.get("id")
    if action == "list":
        tasks = await coordination.task_list(status=args.get("status"), assignee=args.get("assignee"))
        return "\n".join(_task_line(t) for t in tasks) or "No tasks.", False
    if action == "create":
        if not isinstance(args.get("title"), str) or not args["title"].strip():
            return "`title` is required", True
        tags = [str(t) for t in args["tags"]] if isinstance(args.get("tags"), list) else None
        task = await coordination.task_create(args["title"], assignee=args.get("assignee"),
                                              priority=args.get("priority"), tags=tags)
        return f"✓ task created: {_task_line(task)}", False
    if not isinstance(task_id, str) or not task_id:
        return "`id` is required for claim and complete", True
    if action == "claim":
        return f"✓ claimed — it is yours: {_task_line(await coordination.task_claim(task_id))}", False
    if action == "complete":
        return f"✓ completed: {_task_line(await coordination.task_complete(task_id, args.get('result')))}", False
    return "`action` must be list, create, claim or complete", True


async def tool_remind(client: MeshClient, args: dict[str, Any]) -> tuple[str, bool]:
    action = args.get("action") or "schedule"
    if action == "list":
        entries = await client.reminders.list()
        lines = [f"- {from_epoch_ms(e['deliverAt'] or 0).astimezone():%Y-%m-%d %H:%M} "
                 f"{e['text'] or '[sealed]'}{' (cron ' + e['cron'] + ')' if e['cron'] else ''} (id {e['id']})"
                 for e in entries]
        return "\n".join(lines) or "Nothing scheduled.", False
    if action == "cancel":
        outcome = await client.reminders.cancel(str(args.get("id") or ""))
        return ("✓ cancelled", False) if outcome["ok"] else ("nothing of yours scheduled with that id", True)
    text, when, cron = args.get("text"), args.get("when"), args.get("cron")
    if not isinstance(text, str) or not text.strip() or not (when or cron):
        return "`text` and `when` (or `cron`) are required", True
    at = parse_when(str(when)) if when and not cron else None
    ack = await client.reminders.schedule(text, at=at, cron=cron or None, to=args.get("to") or None)
    first = from_epoch_ms(int(ack.get("deliverAt") or 0)).astimezone()
    return f"✓ scheduled for {first:%Y-%m-%d %H:%M %Z}{' then ' + ack['cron'] if ack.get('cron') else ''} " \
           f"(id {ack.get('scheduledId')})", False


async def tool_mesh_info(client: MeshClient, _args: dict[str, Any]) -> tuple[str, bool]:
    info = await client.coordination.info()
    tasks = info.get("tasks") or {}
    return (f"{client.mesh.slug}: {info.get('peers')} sessions connected; groups "
            f"{', '.join(info.get('groups') or []) or 'none'}; state keys {', '.join(info.get('stateKeys') or []) or 'none'}; "
            f"{info.get('memoryCount')} memories; tasks {tasks.get('open', 0)} open, {tasks.get('claimed', 0)} "
            f"claimed, {tasks.get('done', 0)} done. You are {info.get('yourName')}."), False


HANDLERS: dict[str, Callable[[MeshClient, dict[str, Any]], Awaitable[tuple[str, bool]]]] = {
    "state": tool_state, "remember": tool_remember, "recall": tool_recall, "tasks": tool_tasks,
    "remind": tool_remind, "mesh_info": tool_mesh_info,
}  # fmt: skip
