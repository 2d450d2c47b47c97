"""Writes to a mesh's tasks (protocol.md §5.8): create, claim, complete. A claim is one conditional UPDATE
(`status = open` → `claimed`), so of agents racing for a task on any number of workers exactly one wins.
Titles and results are sealed by our clients; status, assignee, priority and tags stay visible for filtering."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone

from meshes.actors import Actor
from meshes.errors import NotFound, ServiceError
from meshes.models import Task, TaskStatus
from meshes.selectors import id_for_ref
from meshes.services.checks import clean_sealed, clean_tags, clean_text, require_live_mesh, require_member
from meshes.text import storable

MAX_TITLE_CHARS = 500
MAX_RESULT_CHARS = 16_000
MAX_LABEL_CHARS = 200


def _clean_label(value: Any, *, field: str, default: str | None, max_chars: int = MAX_LABEL_CHARS) -> str | None:
    if value is None or value == "":
        return default
    if not isinstance(value, str) or not storable(value) or len(value.strip()) > max_chars:
        raise ServiceError("invalid_args", f"{field} must be text of at most {max_chars} characters")
    return value.strip() or default


@transaction.atomic
def task_create(
    *, actor: Actor, title: Any = None, sealed: Any = None, assignee: Any = None, priority: Any = None, tags: Any = None
) -> Task:
    member = require_member(actor)
    require_live_mesh(actor.mesh)
    task = Task(
        mesh=actor.mesh,
        assignee=_clean_label(assignee, field="assignee", default=None),
        priority=_clean_label(priority, field="priority", default="normal", max_chars=32),
        tags=clean_tags(tags),
        created_by=member,
        created_by_name=member.display_name,
    )
    if sealed is not None:
        task.sealed = clean_sealed(sealed, actor=actor, field="sealed")
    else:
        task.title = clean_text(title, field="title", max_chars=MAX_TITLE_CHARS)
    task.save()
    return task


def task_claim(*, actor: Actor, task_id: Any) -> Task:
    """Only an open task can be claimed, by exactly one claimer. `task_id` may be a unique prefix (≥ 6)."""
    member = require_member(actor)
    task_id = id_for_ref(rows=Task.objects.filter(mesh=actor.mesh), ref=task_id, plural="tasks")
    claimed = task_id is not None and Task.objects.filter(id=task_id, status=TaskStatus.OPEN).update(
        status=TaskStatus.CLAIMED, claimed_by=member, claimed_by_name=member.display_name, claimed_at=timezone.now()
    )
    if not claimed:
        raise ServiceError("task_not_claimable", "task is not open or does not exist")
    return Task.objects.get(id=task_id)


@transaction.atomic
def task_complete(*, actor: Actor, task_id: Any, result: Any = None, result_sealed: Any = None) -> Task:
    """From any status (protocol.md §5.8); the result, if any, replaces an earlier one."""
    member = require_member(actor)
    task_id = id_for_ref(rows=Task.objects.filter(mesh=actor.mesh), ref=task_id, plural="tasks")
    task = Task.objects.select_for_update().filter(id=task_id).first() if task_id is not None else None
    if task is None:
        raise NotFound("task_not_found", "task not found in this mesh")
    if result_sealed is not None:
        task.result_sealed, task.result = clean_sealed(result_sealed, actor=actor, field="resultSealed"), None
    elif result is not None and result != "":
        task.result, task.result_sealed = clean_text(result, field="result", max_chars=MAX_RESULT_CHARS), None
    task.status = TaskStatus.DONE
    task.completed_by_name, task.completed_at = member.display_name, timezone.now()
    task.save()
    return task
