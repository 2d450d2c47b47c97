# ruff: noqa: DJ001  -- null is meaningful on the wire here (no description, never read, no session key).
"""Topics (platform.md §1.5): named conversation scopes of a mesh, their subscribers and their durable history.
History rows hold only what the sender sent (for our clients, `CMS1` ciphertext: docs/encryption.md)."""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from protocol.ids import new_id

GENERAL_TOPIC = "general"


class TopicVisibility(models.TextChoices):
    PUBLIC = "public"
    PRIVATE = "private"
    DM = "dm"


class TopicRole(models.TextChoices):
    LEAD = "lead"
    MEMBER = "member"
    OBSERVER = "observer"


class Topic(models.Model):
    id = models.CharField(primary_key=True, max_length=32, default=new_id, editable=False)
    mesh = models.ForeignKey("meshes.Mesh", on_delete=models.CASCADE, related_name="topics")
    name = models.CharField(max_length=50)
    description = models.TextField(null=True, blank=True)
    visibility = models.CharField(max_length=8, choices=TopicVisibility.choices, default=TopicVisibility.PUBLIC)
    created_by = models.ForeignKey(
        "meshes.Member", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    archived_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["mesh", "name"], name="topic_mesh_name_unique")]

    def __str__(self) -> str:
        return f"#{self.name} ({self.id[:8]})"

    @property
    def target_spec(self) -> str:
        return f"#{self.id}"


class TopicMember(models.Model):
    """A member's subscription: per member, not per session."""

    topic = models.ForeignKey(Topic, on_delete=models.CASCADE, related_name="subscriptions")
    member = models.ForeignKey("meshes.Member", on_delete=models.CASCADE, related_name="topic_subscriptions")
    role = models.CharField(max_length=8, choices=TopicRole.choices, default=TopicRole.MEMBER)
    joined_at = models.DateTimeField(default=timezone.now)
    last_read_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["topic", "member"], name="topic_member_unique")]
        indexes = [models.Index(fields=["member"], name="topic_member_by_member")]

    def __str__(self) -> str:
        return f"{self.member_id[:8]} in {self.topic_id[:8]}"


class TopicMessage(models.Model):
    """One message of a topic's history. `seq` orders it (a batch of sends shares one timestamp); `id` is the
    broker's message id, the `beforeId` cursor of history pages."""

    seq = models.BigAutoField(primary_key=True)
    id = models.CharField(max_length=32, unique=True)
    topic = models.ForeignKey(Topic, on_delete=models.CASCADE, related_name="messages", db_index=False)
    # Written in bulk by the send path, like the broker's hot tables: no per-row constraint checks.
    sender_member = models.ForeignKey(
        "meshes.Member", on_delete=models.CASCADE, related_name="+", db_index=False, db_constraint=False
    )
    sender_session_pubkey = models.CharField(max_length=64, null=True, blank=True)
    sender_pubkey = models.CharField(max_length=64)
    nonce = models.TextField()
    ciphertext = models.TextField()
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [
            models.Index(fields=["topic", "seq"], name="topic_message_by_topic_seq"),
            models.Index(fields=["topic", "created_at"], name="topic_message_by_topic_time"),
        ]

    def __str__(self) -> str:
        return f"topic message {self.id[:8]}"
