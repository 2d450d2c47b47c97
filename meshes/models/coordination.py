# ruff: noqa: DJ001  -- null is meaningful here: a sealed row has no plaintext, a plaintext row no sealed value.
"""Coordination (protocol.md §5.4–5.8): shared state, memories, tasks and scheduled messages of a mesh.

What our clients write is sealed (`sealed` = `{nonce, ciphertext}`, docs/encryption.md "Coordination records"): the
server orders, counts and filters rows by what it must see (state keys, task status and assignee, fire times) and
never holds the text. Reference clients write plaintext; those rows are kept as sent and marked unencrypted.
"""

from __future__ import annotations

import uuid

from django.db import models
from django.db.models import Q
from django.utils import timezone

from protocol import vocabulary
from protocol.ids import new_id


class StateEntry(models.Model):
    mesh = models.ForeignKey("meshes.Mesh", on_delete=models.CASCADE, related_name="state_entries")
    key = models.CharField(max_length=200)
    value = models.JSONField(null=True, blank=True)  # a reference client's plaintext value
    sealed = models.JSONField(null=True, blank=True)
    version = models.PositiveBigIntegerField(default=1)  # +1 per write: what compare-and-set compares
    updated_by = models.ForeignKey("meshes.Member", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    updated_by_name = models.CharField(max_length=200, default="unknown")
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["mesh", "key"], name="state_mesh_key_unique")]

    def __str__(self) -> str:
        return f"state {self.key}"

    @property
    def encrypted(self) -> bool:
        return self.sealed is not None


class Memory(models.Model):
    id = models.CharField(primary_key=True, max_length=32, default=new_id, editable=False)
    mesh = models.ForeignKey("meshes.Mesh", on_delete=models.CASCADE, related_name="memories")
    content = models.TextField(null=True, blank=True)  # a reference client's plaintext memory
    sealed = models.JSONField(null=True, blank=True)  # content and tags, sealed
    tags = models.JSONField(default=list)  # plaintext tags of a plaintext memory
    remembered_by = models.ForeignKey(
        "meshes.Member", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    remembered_by_name = models.CharField(max_length=200, default="unknown")
    created_at = models.DateTimeField(default=timezone.now)
    forgotten_at = models.DateTimeField(null=True, blank=True)
    forgotten_by = models.ForeignKey("meshes.Member", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        indexes = [models.Index(fields=["mesh", "forgotten_at", "created_at"], name="memory_mesh_live_idx")]

    def __str__(self) -> str:
        return f"memory {self.id[:8]}"

    @property
    def encrypted(self) -> bool:
        return self.sealed is not None


class MemoryToken(models.Model):
    """One blind word token of a sealed memory: the broker matches a recall's tokens here."""

    id = models.BigAutoField(primary_key=True)
    memory = models.ForeignKey(Memory, on_delete=models.CASCADE, related_name="tokens", db_index=False)
    mesh_id = models.CharField(max_length=32)
    token = models.CharField(max_length=32)

    class Meta:
        indexes = [
            models.Index(fields=["mesh_id", "token"], name="memory_token_mesh_idx"),
            models.Index(fields=["memory"], name="memory_token_memory_idx"),
        ]

    def __str__(self) -> str:
        return f"token of {self.memory_id[:8]}"


class TaskStatus(models.TextChoices):
    OPEN = vocabulary.TaskStatus.OPEN.value
    CLAIMED = vocabulary.TaskStatus.CLAIMED.value
    DONE = vocabulary.TaskStatus.DONE.value


class Task(models.Model):
    id = models.CharField(primary_key=True, max_length=32, default=new_id, editable=False)
    mesh = models.ForeignKey("meshes.Mesh", on_delete=models.CASCADE, related_name="tasks")
    title = models.TextField(null=True, blank=True)  # a reference client's plaintext title
    sealed = models.JSONField(null=True, blank=True)  # the title, sealed
    assignee = models.CharField(max_length=200, null=True, blank=True)
    priority = models.CharField(max_length=32, default="normal")
    tags = models.JSONField(default=list)
    status = models.CharField(max_length=8, choices=TaskStatus.choices, default=TaskStatus.OPEN)
    created_by = models.ForeignKey("meshes.Member", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_by_name = models.CharField(max_length=200, null=True, blank=True)
    claimed_by = models.ForeignKey("meshes.Member", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    claimed_by_name = models.CharField(max_length=200, null=True, blank=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    completed_by_name = models.CharField(max_length=200, null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    result = models.TextField(null=True, blank=True)  # a reference client's plaintext result
    result_sealed = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [models.Index(fields=["mesh", "status", "created_at"], name="task_mesh_status_idx")]

    def __str__(self) -> str:
        return f"task {self.id[:8]} ({self.status})"

    @property
    def encrypted(self) -> bool:
        return self.sealed is not None


def new_schedule_id() -> str:
    return str(uuid.uuid4())  # §1.6: scheduledId is a UUID v4


class ScheduledMessage(models.Model):
    """A reminder or scheduled send. `deliver_at` is the next fire time; a worker that fires it moves `deliver_at`
    on (cron) or sets `finished_at` (one-shot) in the same transaction that stores the message, so each due time
    fires once whatever the number of workers."""

    id = models.CharField(primary_key=True, max_length=36, default=new_schedule_id, editable=False)
    mesh = models.ForeignKey("meshes.Mesh", on_delete=models.CASCADE, related_name="scheduled_messages")
    member = models.ForeignKey("meshes.Member", on_delete=models.CASCADE, related_name="+")
    session_pubkey = models.CharField(max_length=64, null=True, blank=True)  # the scheduling connection's key
    to = models.TextField()  # a targetSpec
    message = models.TextField(null=True, blank=True)  # a reference client's plaintext text
    nonce = models.TextField(default="")  # our clients' envelope, sealed to the target
    ciphertext = models.TextField(default="")
    note = models.JSONField(null=True, blank=True)  # the text sealed to the scheduler, for its own listings
    subtype = models.CharField(max_length=16, null=True, blank=True)
    cron = models.CharField(max_length=120, null=True, blank=True)
    time_zone = models.CharField(max_length=64, default="UTC")
    deliver_at = models.DateTimeField()
    fired_count = models.PositiveIntegerField(default=0)
    last_fired_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    cancelled_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(
                fields=["deliver_at"], name="scheduled_due_idx", condition=Q(cancelled_at=None, finished_at=None)
            ),
            models.Index(fields=["mesh", "member"], name="scheduled_mesh_member_idx"),
        ]

    def __str__(self) -> str:
        return f"scheduled {self.id[:8]} → {self.to[:16]}"

    @property
    def encrypted(self) -> bool:
        return self.message is None

    @property
    def active(self) -> bool:
        return self.cancelled_at is None and self.finished_at is None
