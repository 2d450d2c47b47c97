# ruff: noqa: DJ001  -- null is meaningful on the wire here ("no session key", summary null vs "").
"""Broker state that must survive a worker: presences (with leases), saved peer state, messages and
per-recipient deliveries. The channel layer only rings doorbells; everything a peer is owed lives here.
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils import timezone

from protocol import vocabulary
from protocol.ids import new_id


class Status(models.TextChoices):
    IDLE = vocabulary.Status.IDLE.value
    WORKING = vocabulary.Status.WORKING.value
    DND = vocabulary.Status.DND.value


class StatusSource(models.TextChoices):
    HOOK = "hook"
    MANUAL = "manual"
    JSONL = "jsonl"


class Presence(models.Model):
    """One row per authenticated connection. Live = not disconnected and lease (last_ping_at) fresh."""

    id = models.CharField(primary_key=True, max_length=32, default=new_id, editable=False)
    mesh = models.ForeignKey("meshes.Mesh", on_delete=models.CASCADE, related_name="+")
    member = models.ForeignKey("meshes.Member", on_delete=models.CASCADE, related_name="+")
    member_pubkey = models.CharField(max_length=64)
    session_id = models.CharField(max_length=200)
    session_pubkey = models.CharField(max_length=64, null=True, blank=True)
    display_name = models.CharField(max_length=200)
    pid = models.BigIntegerField(default=0)
    cwd = models.TextField(default="")
    hostname = models.CharField(max_length=255, null=True, blank=True)
    peer_type = models.CharField(max_length=32, null=True, blank=True)
    channel = models.CharField(max_length=64, null=True, blank=True)
    model = models.CharField(max_length=128, null=True, blank=True)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.IDLE)
    status_source = models.CharField(max_length=8, choices=StatusSource.choices, default=StatusSource.JSONL)
    status_updated_at = models.DateTimeField(default=timezone.now)
    summary = models.TextField(null=True, blank=True)
    groups = models.JSONField(default=list)
    visible = models.BooleanField(default=True)
    profile = models.JSONField(default=dict)
    stats = models.JSONField(null=True, blank=True)
    delivery_ack = models.BooleanField(default=False)
    # The client signs its status hooks (hello `signedHooks`): unsigned hooks never touch this session.
    signed_hooks = models.BooleanField(default=False)
    ip = models.CharField(max_length=64, default="")  # the socket's client address: unsigned hooks must share it
    # The worker holding the socket: its channel-layer channel (doorbells, kicks) or a local id.
    worker_id = models.CharField(max_length=200)
    connected_at = models.DateTimeField(default=timezone.now)
    last_ping_at = models.DateTimeField(default=timezone.now)  # the lease, refreshed by the worker's heartbeat
    # The last frame from the client, to a heartbeat's precision: `kick --stale` finds silent sessions by it.
    last_active_at = models.DateTimeField(default=timezone.now)
    disconnected_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["mesh", "disconnected_at"], name="presence_mesh_live_idx"),
            models.Index(fields=["worker_id", "disconnected_at"], name="presence_worker_live_idx"),
            models.Index(fields=["mesh", "session_id"], name="presence_mesh_session_idx"),
            # A send batch finds its targets' live connections by key, not by scanning its mesh's live ones.
            models.Index(fields=["member_pubkey"], name="presence_member_key_live_idx", condition=Q(disconnected_at=None)),
            models.Index(fields=["session_pubkey"], name="presence_session_key_live_idx", condition=Q(disconnected_at=None)),
            models.Index(fields=["cwd"], name="presence_cwd_idx"),
            models.Index(fields=["session_pubkey"], name="presence_session_pubkey_idx"),
        ]

    def __str__(self) -> str:
        return f"presence {self.id[:8]} ({self.display_name})"

    @property
    def routing_pubkey(self) -> str:
        return self.session_pubkey or self.member_pubkey

    @property
    def session_key(self) -> str:
        return session_key(self.session_pubkey, self.session_id)


def session_key(session_pubkey: str | None, session_id: str) -> str:
    """What a per-connection delivery row is addressed to; survives reconnects of the same session."""
    return session_pubkey or f"sid:{session_id}"


class BrokerWorker(models.Model):
    """A live worker process beats here every second; a worker whose beat stopped is dead, and any other worker
    retires its presences within seconds instead of waiting for their 45 s leases."""

    worker_id = models.CharField(primary_key=True, max_length=200)
    started_at = models.DateTimeField(default=timezone.now)
    beat_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"worker {self.worker_id}"


class SessionKey(models.Model):
    """A session key belongs to the member that first declared it in its mesh: nobody else may say hello with it,
    so a session key always names one member's sessions (routing, acks and `senderPubkey` rely on that)."""

    mesh = models.ForeignKey("meshes.Mesh", on_delete=models.CASCADE, related_name="+")
    session_pubkey = models.CharField(max_length=64)
    member = models.ForeignKey("meshes.Member", on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["mesh", "session_pubkey"], name="session_key_mesh_unique")]

    def __str__(self) -> str:
        return f"session key {self.session_pubkey[:8]} of {self.member_id[:8]}"


class PeerState(models.Model):
    """Saved at every disconnect, restored at hello (protocol.md §4.9)."""

    mesh = models.ForeignKey("meshes.Mesh", on_delete=models.CASCADE, related_name="+")
    member = models.ForeignKey("meshes.Member", on_delete=models.CASCADE, related_name="+")
    groups = models.JSONField(default=list)
    profile = models.JSONField(default=dict)
    visible = models.BooleanField(default=True)
    last_display_name = models.CharField(max_length=200, default="")
    cumulative_stats = models.JSONField(default=dict)
    last_seen_at = models.DateTimeField(default=timezone.now)
    last_summary = models.TextField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["mesh", "member"], name="peer_state_mesh_member_unique")]

    def __str__(self) -> str:
        return f"peer state {self.member_id[:8]}"


class Priority(models.TextChoices):
    NOW = vocabulary.Priority.NOW.value
    NEXT = vocabulary.Priority.NEXT.value
    LOW = vocabulary.Priority.LOW.value


class Message(models.Model):
    """One accepted `send`. The payload is opaque and stored byte for byte."""

    id = models.CharField(primary_key=True, max_length=32, default=new_id, editable=False)
    # The hot tables keep only the indexes their queries use and no database-level foreign keys to meshes and
    # members: each would cost an index entry (plus Postgres' `_like` twin) or a per-row trigger on every send.
    # Deletes still cascade (Django's collector); rows are only written by the validated send path.
    mesh = models.ForeignKey("meshes.Mesh", on_delete=models.CASCADE, related_name="+", db_index=False, db_constraint=False)
    sender_member = models.ForeignKey(
        "meshes.Member", on_delete=models.CASCADE, related_name="+", db_index=False, db_constraint=False
    )
    sender_session_pubkey = models.CharField(max_length=64, null=True, blank=True)
    sender_pubkey = models.CharField(max_length=64)  # what pushes carry: session key, else member key
    target_spec = models.TextField()
    priority = models.CharField(max_length=4, choices=Priority.choices, default=Priority.NEXT)
    nonce = models.TextField()
    ciphertext = models.TextField()
    client_message_id = models.CharField(max_length=64, null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    subtype = models.CharField(max_length=16, null=True, blank=True)  # "reminder" for a scheduled delivery

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["sender_member", "client_message_id"],
                condition=Q(client_message_id__isnull=False),
                name="message_client_id_unique_per_sender",
            )
        ]
        indexes = [
            models.Index(fields=["created_at"], name="message_created_idx"),
            models.Index(fields=["mesh"], name="message_mesh_idx"),
        ]

    def __str__(self) -> str:
        return f"message {self.id[:8]} → {self.target_spec[:16]}"


class DeliveryState(models.IntegerChoices):
    PENDING = 0
    IN_FLIGHT = 1  # written (or about to be) to the socket of `claimed_by`
    DELIVERED = 2


class Delivery(models.Model):
    """What one recipient is owed. `recipient_session` null = any connection of the member."""

    id = models.BigAutoField(primary_key=True)
    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="deliveries", db_index=False)
    recipient_member = models.ForeignKey(
        "meshes.Member", on_delete=models.CASCADE, related_name="+", db_index=False, db_constraint=False
    )
    recipient_session = models.CharField(max_length=210, null=True, blank=True)
    # Direct messages obey status gating (protocol.md §3.4); multicast does not.
    gated = models.BooleanField(default=True)
    priority = models.CharField(max_length=4, choices=Priority.choices, default=Priority.NEXT)
    state = models.SmallIntegerField(choices=DeliveryState.choices, default=DeliveryState.PENDING)
    claimed_by = models.CharField(max_length=32, null=True, blank=True)  # presence id
    claimed_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        # Delivered rows (most of the table) are in neither state index, so marking a row delivered leaves them.
        indexes = [
            models.Index(fields=["message"], name="delivery_message_idx"),
            models.Index(
                fields=["recipient_member", "state"],
                name="delivery_recipient_state_idx",
                condition=Q(state__lt=DeliveryState.DELIVERED),
            ),
            models.Index(
                fields=["state", "claimed_by"],
                name="delivery_state_claimer_idx",
                condition=Q(state__lt=DeliveryState.DELIVERED),
            ),
        ]

    def __str__(self) -> str:
        return f"delivery {self.id} ({self.get_state_display()})"

    @property
    def is_delivered(self) -> bool:
        return self.state == DeliveryState.DELIVERED


class PendingHookStatus(models.Model):
    """A hook status that arrived before its session said hello (protocol.md §4.10 step 4); TTL 10 s."""

    pid = models.BigIntegerField(default=0)
    cwd = models.TextField()
    status = models.CharField(max_length=8, choices=Status.choices)
    created_at = models.DateTimeField(default=timezone.now)
    # Who may take it: the member that signed the hook, else a session from the same address that does not sign.
    member_id = models.CharField(max_length=32, null=True, blank=True)
    ip = models.CharField(max_length=64, default="")

    class Meta:
        indexes = [models.Index(fields=["cwd", "created_at"], name="pending_hook_cwd_idx")]

    def __str__(self) -> str:
        return f"pending {self.status} for {self.cwd}"


class ScopeEpoch(models.Model):
    """One epoch of a scope's key (docs/encryption.md "The mesh keyring"). The row exists before any of its wraps:
    two peers racing to start the same epoch cannot both succeed, so an epoch never mixes two keys."""

    mesh = models.ForeignKey("meshes.Mesh", on_delete=models.CASCADE, related_name="+")
    scope = models.CharField(max_length=200)
    epoch = models.PositiveIntegerField()
    created_by = models.ForeignKey("meshes.Member", null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["mesh", "scope", "epoch"], name="scope_epoch_unique")]

    def __str__(self) -> str:
        return f"{self.scope} epoch {self.epoch}"


class KeyWrap(models.Model):
    """One member's copy of one epoch's key, sealed to that member (an opaque `CMK1` blob to the broker)."""

    mesh = models.ForeignKey("meshes.Mesh", on_delete=models.CASCADE, related_name="+")
    scope = models.CharField(max_length=200)
    epoch = models.PositiveIntegerField()
    recipient = models.ForeignKey("meshes.Member", on_delete=models.CASCADE, related_name="+")
    granter = models.ForeignKey("meshes.Member", null=True, on_delete=models.SET_NULL, related_name="+")
    wrap = models.TextField()
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["mesh", "scope", "epoch", "recipient"], name="key_wrap_unique")
        ]
        indexes = [models.Index(fields=["mesh", "scope", "recipient"], name="key_wrap_recipient_idx")]

    def __str__(self) -> str:
        return f"{self.scope} epoch {self.epoch} for {self.recipient_id[:8]}"


class KeyRequest(models.Model):
    """A member waits for a scope's keys; kept until a holder wraps them for it, so holders who connect later
    still hear of it."""

    mesh = models.ForeignKey("meshes.Mesh", on_delete=models.CASCADE, related_name="+")
    scope = models.CharField(max_length=200)
    member = models.ForeignKey("meshes.Member", on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["mesh", "scope", "member"], name="key_request_unique")]

    def __str__(self) -> str:
        return f"{self.member_id[:8]} waits for {self.scope}"
