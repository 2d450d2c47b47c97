"""`create_task`, `claim_task`, `complete_task`, `list_tasks` (protocol.md §5.8). Claim and complete answer with
the mesh's task list (plus the task they changed); every other connection hears a `task_*` system push."""

from __future__ import annotations

from typing import Any

from broker import wire, wire_coordination
from broker.handlers.registry import call_for_member, handler, run_for_member
from broker.worker import get_worker
from meshes import selectors_coordination
from meshes.services.tasks import task_claim, task_complete, task_create


async def _announce(conn, event: str, task) -> None:
    await get_worker().fanout.broadcast(
        conn.mesh_id, wire_coordination.task_event(conn.mesh_id, event, task), exclude_presence_id=conn.presence_id
    )


def _create(actor, frame: dict[str, Any]):
    return task_create(actor=actor, title=frame.get("title"), sealed=frame.get("sealed"), assignee=frame.get("assignee"),
                       priority=frame.get("priority"), tags=frame.get("tags"))


@handler("create_task")
async def handle_create_task(conn, frame) -> None:
    task = await call_for_member(conn, frame, _create)
    if task is not None:
        await conn.send_frame(wire.with_req_id(wire_coordination.task_created(task), frame))
        await _announce(conn, "task_created", task)


async def _change(conn, frame: dict[str, Any], change, event: str) -> None:
    """Claim or complete: the reply is the mesh's task list with the changed task; the others hear `event`."""

    def run(actor, frame: dict[str, Any]):
        return change(actor, frame), selectors_coordination.tasks_list(mesh_id=actor.mesh.id)

    result = await call_for_member(conn, frame, run)
    if result is not None:
        task, tasks = result
        await conn.send_frame(wire.with_req_id(wire_coordination.task_list(tasks, task=task), frame))
        await _announce(conn, event, task)


@handler("claim_task")
async def handle_claim_task(conn, frame) -> None:
    await _change(conn, frame, lambda actor, f: task_claim(actor=actor, task_id=f.get("taskId")), "task_claimed")


@handler("complete_task")
async def handle_complete_task(conn, frame) -> None:
    await _change(conn, frame, lambda actor, f: task_complete(
        actor=actor, task_id=f.get("taskId"), result=f.get("result"), result_sealed=f.get("resultSealed")
    ), "task_done")


def _list(actor, frame: dict[str, Any]) -> dict[str, Any]:
    return wire_coordination.task_list(
        selectors_coordination.tasks_list(mesh_id=actor.mesh.id, status=frame.get("status"), assignee=frame.get("assignee"))
    )


@handler("list_tasks")
async def handle_list_tasks(conn, frame) -> None:
    await run_for_member(conn, frame, _list)
