"""The coordination frames the broker writes (protocol.md §5.4–5.8, with the additive fields of
docs/wire-extensions.md "Coordination"). Pure functions of rows; one shape each. A sealed row goes out with
`value`/`content`/`title` null, `encrypted: true` and its `sealed` record; a plaintext row as the reference sends it."""

from __future__ import annotations

from typing import Any

from broker.wire import system_push
from protocol.encoding import epoch_ms, iso_ms, iso_or_none

# --- state --------------------------------------------------------------------------------------------------


def state_entry(entry: Any) -> dict[str, Any]:
    item = {
        "key": entry.key,
        "value": entry.value,
        "updatedBy": entry.updated_by_name,
        "updatedAt": iso_ms(entry.updated_at),
        "version": entry.version,
        "encrypted": entry.encrypted,
    }
    if entry.encrypted:
        item["sealed"] = entry.sealed
    return item


def state_result(key: str, entry: Any | None) -> dict[str, Any]:
    if entry is None:
        return {"type": "state_result", "key": key, "value": None, "updatedBy": "", "updatedAt": "", "version": 0}
    return {"type": "state_result", **state_entry(entry)}


def state_list(entries: list[Any]) -> dict[str, Any]:
    return {"type": "state_list", "entries": [state_entry(entry) for entry in entries]}


def state_change(entry: Any) -> dict[str, Any]:
    """To every other connection of the mesh: §5.4's `{key, value, updatedBy}` plus version and the sealed value."""
    item = state_entry(entry)
    del item["updatedAt"]
    return {"type": "state_change", **item}


def state_stored(entry: Any) -> dict[str, Any]:
    """Additive: only a `set_state` that asked (`expectedVersion` or `confirm`) hears this."""
    return {"type": "state_stored", "key": entry.key, "version": entry.version}


# --- memory -------------------------------------------------------------------------------------------------


def memory_stored(memory: Any) -> dict[str, Any]:
    return {"type": "memory_stored", "id": memory.id}


def memory_results(recalled: list[Any]) -> dict[str, Any]:
    def entry(item: Any) -> dict[str, Any]:
        memory = item.memory
        found = {
            "id": memory.id,
            "content": memory.content,
            "tags": memory.tags,
            "rememberedBy": memory.remembered_by_name,
            "rememberedAt": iso_ms(memory.created_at),
            "encrypted": memory.encrypted,
            "score": item.score,
        }
        if memory.encrypted:
            found["sealed"] = memory.sealed
        return found

    return {"type": "memory_results", "memories": [entry(item) for item in recalled]}


def memory_forgotten(memory_id: Any, forgotten: bool) -> dict[str, Any]:
    """§5.5's reply (an `ack`), plus whether anything was forgotten."""
    ref = memory_id if isinstance(memory_id, str) else ""
    return {"type": "ack", "id": ref, "messageId": ref, "queued": False, "forgotten": forgotten}


# --- tasks --------------------------------------------------------------------------------------------------


def task_entry(task: Any) -> dict[str, Any]:
    item = {
        "id": task.id,
        "title": task.title,
        "assignee": task.assignee,
        "claimedBy": task.claimed_by_name,
        "status": task.status,
        "priority": task.priority,
        "createdBy": task.created_by_name,
        "tags": task.tags,
        "createdAt": iso_ms(task.created_at),
        "claimedAt": iso_or_none(task.claimed_at),
        "completedAt": iso_or_none(task.completed_at),
        "completedBy": task.completed_by_name,
        "result": task.result,
        "encrypted": task.encrypted,
    }
    if task.sealed is not None:
        item["sealed"] = task.sealed
    if task.result_sealed is not None:
        item["resultSealed"] = task.result_sealed
    return item


def task_created(task: Any) -> dict[str, Any]:
    return {"type": "task_created", "id": task.id, "task": task_entry(task)}


def task_list(tasks: list[Any], *, task: Any | None = None) -> dict[str, Any]:
    """Claim and complete answer with the whole list (§5.8); ours also carry the task they changed."""
    frame: dict[str, Any] = {"type": "task_list", "tasks": [task_entry(t) for t in tasks]}
    if task is not None:
        frame["task"] = task_entry(task)
    return frame


def task_event(mesh_id: str, event: str, task: Any) -> dict[str, Any]:
    """`task_created` / `task_claimed` / `task_done` system pushes: metadata only (the title may be sealed)."""
    data = {
        "taskId": task.id,
        "status": task.status,
        "priority": task.priority,
        "assignee": task.assignee,
        "by": {"task_created": task.created_by_name, "task_claimed": task.claimed_by_name}.get(
            event, task.completed_by_name
        ),
        "encrypted": task.encrypted,
    }
    if not task.encrypted:
        data["title"] = task.title
    return system_push(mesh_id, event, data)


# --- scheduled messages -------------------------------------------------------------------------------------


def scheduled_ack(entry: Any) -> dict[str, Any]:
    frame: dict[str, Any] = {"type": "scheduled_ack", "scheduledId": entry.id, "deliverAt": epoch_ms(entry.deliver_at)}
    if entry.cron:
        frame["cron"] = entry.cron
        frame["timeZone"] = entry.time_zone
    return frame


def scheduled_entry(entry: Any) -> dict[str, Any]:
    item: dict[str, Any] = {
        "id": entry.id,
        "to": entry.to,
        "message": entry.message,
        "deliverAt": epoch_ms(entry.deliver_at),
        "createdAt": epoch_ms(entry.created_at),
        "encrypted": entry.encrypted,
    }
    if entry.cron:
        item.update(cron=entry.cron, firedCount=entry.fired_count, timeZone=entry.time_zone)
    if entry.note is not None:
        item["note"] = entry.note
    return item


def scheduled_list(entries: list[Any]) -> dict[str, Any]:
    return {"type": "scheduled_list", "messages": [scheduled_entry(entry) for entry in entries]}


def cancel_scheduled_ack(scheduled_id: Any, ok: bool) -> dict[str, Any]:
    return {"type": "cancel_scheduled_ack", "scheduledId": scheduled_id if isinstance(scheduled_id, str) else "", "ok": ok}


# --- overview -----------------------------------------------------------------------------------------------


def mesh_info_result(*, mesh_id: str, peers: list[Any], counts: Any, you: Any | None, file_count: int) -> dict[str, Any]:
    """§5.6, field by field; streams, tables and collections do not exist on this broker."""
    groups = sorted({f"@{g['name']}" for p in peers for g in (p.groups or []) if isinstance(g, dict) and g.get("name")})
    your_groups = [
        {k: g[k] for k in ("name", "role") if g.get(k)} for g in ((you.groups or []) if you is not None else [])
        if isinstance(g, dict) and g.get("name")
    ]
    return {
        "type": "mesh_info_result",
        "mesh": mesh_id,
        "peers": len(peers),
        "groups": groups,
        "stateKeys": counts.state_keys,
        "memoryCount": counts.memory_count,
        "fileCount": file_count,
        "tasks": counts.tasks,
        "streams": [],
        "tables": [],
        "collections": [],
        "yourName": you.display_name if you is not None else "unknown",
        "yourGroups": your_groups,
    }
