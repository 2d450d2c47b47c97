"""Meshes, their members, invites, API keys and the hash-chained audit log."""

from __future__ import annotations

import hashlib

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils import timezone

from meshes.keyvault import open_secret
from protocol import invites as invites_v1
from protocol import vocabulary
from protocol.ids import new_id


class Role(models.TextChoices):
    OWNER = "owner", "Owner"
    ADMIN = "admin", "Admin"
    MEMBER = "member", "Member"


MANAGER_ROLES = (Role.OWNER, Role.ADMIN)


class Mesh(models.Model):
    """The trust boundary. The id is the identity; the slug is cosmetic and not unique."""

    id = models.CharField(primary_key=True, max_length=32, default=new_id, editable=False)
    name = models.CharField(max_length=80)
    slug = models.CharField(max_length=40)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="owned_meshes")
    owner_pubkey = models.CharField(max_length=64, editable=False)
    # Sealed with meshes.keyvault; never rendered, never logged.
    owner_secret_key_sealed = models.TextField(editable=False)
    root_key_sealed = models.TextField(editable=False)
    created_at = models.DateTimeField(default=timezone.now)
    archived_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["owner", "-created_at"], name="mesh_owner_created_idx")]
        verbose_name_plural = "meshes"

    def __str__(self) -> str:
        return f"{self.name} ({self.id[:8]})"

    @property
    def is_archived(self) -> bool:
        return self.archived_at is not None

    def owner_secret_hex(self) -> str:
        return open_secret(self.owner_secret_key_sealed)

    def root_key_b64url(self) -> str:
        return open_secret(self.root_key_sealed)


class Member(models.Model):
    """A peer identity in a mesh (an ed25519 pubkey), optionally linked to a dashboard user."""

    id = models.CharField(primary_key=True, max_length=32, default=new_id, editable=False)
    mesh = models.ForeignKey(Mesh, on_delete=models.CASCADE, related_name="members")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="memberships"
    )
    # Null for dashboard-only members and for v2 claims that did not bind an ed25519 key.
    pubkey = models.CharField(max_length=64, null=True, blank=True)  # noqa: DJ001 - unique only among real keys
    display_name = models.CharField(max_length=100)
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.MEMBER)
    role_tag = models.CharField(max_length=64, blank=True, default="")
    default_groups = models.JSONField(default=list, blank=True)
    message_mode = models.CharField(max_length=16, default="push")
    peer_grants = models.JSONField(default=dict, blank=True)
    invite = models.ForeignKey("Invite", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    joined_at = models.DateTimeField(default=timezone.now)
    last_seen_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    # Set with revoked_at by a ban (not by a removal or a re-key): the ban list, and what `unban` may undo.
    banned_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["mesh", "pubkey"], condition=Q(revoked_at__isnull=True), name="member_live_pubkey_unique"
            ),
            models.UniqueConstraint(
                fields=["mesh", "user"],
                condition=Q(revoked_at__isnull=True, user__isnull=False, pubkey__isnull=True),
                name="member_live_dashboard_user_unique",
            ),
        ]
        indexes = [
            models.Index(fields=["mesh", "user"], name="member_mesh_user_idx"),
            models.Index(fields=["mesh", "revoked_at"], name="member_mesh_revoked_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.display_name} ({self.id[:8]})"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None

    @property
    def is_manager(self) -> bool:
        return self.role in MANAGER_ROLES

    @property
    def wire_role(self) -> str:
        """The v0.1 wire knows admin/member; the owner is an admin there."""
        return Role.MEMBER if self.role == Role.MEMBER else Role.ADMIN


class Invite(models.Model):
    """A join capability minted in both forms: a v1 signed token and a v2 short code."""

    id = models.CharField(primary_key=True, max_length=32, default=new_id, editable=False)
    mesh = models.ForeignKey(Mesh, on_delete=models.CASCADE, related_name="invites")
    # The v1 token carries the root key, so it is never stored: it is rebuilt on demand (`token`) from the mesh's
    # encrypted keys and what it was minted with (ed25519 signatures are deterministic); its digest finds the row.
    token_digest = models.CharField(max_length=64, unique=True, editable=False)
    token_mesh_slug = models.CharField(max_length=200, editable=False)
    token_broker_url = models.TextField(editable=False)
    code = models.CharField(max_length=16, unique=True, null=True, blank=True)
    role = models.CharField(max_length=16, choices=[(Role.ADMIN, "Admin"), (Role.MEMBER, "Member")])
    max_uses = models.PositiveIntegerField(default=1)
    used_count = models.PositiveIntegerField(default=0)
    preset = models.JSONField(default=dict, blank=True)
    expires_at = models.DateTimeField()
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_by_member = models.ForeignKey(Member, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    revoked_at = models.DateTimeField(null=True, blank=True)
    version = models.PositiveSmallIntegerField(default=2)
    capability_v2 = models.TextField(blank=True, default="", editable=False)
    claimed_by_pubkey = models.CharField(max_length=64, blank=True, default="")
    # A personal CLI link: joining with it binds the CLI's key to this (dashboard) member instead of adding one.
    for_member = models.ForeignKey(Member, null=True, blank=True, on_delete=models.CASCADE, related_name="+")

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(used_count__lte=F("max_uses")), name="invite_uses_within_max"),
            models.CheckConstraint(condition=Q(max_uses__gte=1), name="invite_max_uses_positive"),
        ]
        indexes = [models.Index(fields=["mesh", "-created_at"], name="invite_mesh_created_idx")]

    def __str__(self) -> str:
        return f"invite {self.id[:8]} → {self.mesh_id[:8]}"

    def state(self, now=None) -> str:
        """One word for lists: active, revoked, expired or exhausted."""
        now = now or timezone.now()
        if self.revoked_at:
            return "revoked"
        if self.expires_at <= now:
            return "expired"
        if self.used_count >= self.max_uses:
            return "exhausted"
        return "active"

    @property
    def uses_left(self) -> int:
        return max(self.max_uses - self.used_count, 0)

    def v1_payload(self) -> invites_v1.InvitePayloadV1:
        return invites_v1.v1_sign(
            invites_v1.InvitePayloadV1(
                mesh_id=self.mesh_id,
                mesh_slug=self.token_mesh_slug,
                broker_url=self.token_broker_url,
                expires_at=int(self.expires_at.timestamp()),
                mesh_root_key=self.mesh.root_key_b64url(),
                role=self.role,
                owner_pubkey=self.mesh.owner_pubkey,
            ),
            self.mesh.owner_secret_hex(),
        )

    @property
    def token(self) -> str:
        """The v1 token (root key inside): for managers' eyes and the short-code lookup only."""
        return invites_v1.v1_encode(self.v1_payload())


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


class ApiKeyCapability(models.TextChoices):
    SEND = vocabulary.ApiKeyCapability.SEND.value, "send"
    READ = vocabulary.ApiKeyCapability.READ.value, "read"
    STATE_WRITE = vocabulary.ApiKeyCapability.STATE_WRITE.value, "state_write"
    ADMIN = vocabulary.ApiKeyCapability.ADMIN.value, "admin"


class ApiKey(models.Model):
    """A bearer credential bounded to one mesh. Only the SHA-256 of the secret is stored."""

    id = models.CharField(primary_key=True, max_length=32, default=new_id, editable=False)
    mesh = models.ForeignKey(Mesh, on_delete=models.CASCADE, related_name="api_keys")
    label = models.CharField(max_length=100)
    secret_hash = models.CharField(max_length=64, unique=True, editable=False)
    secret_prefix = models.CharField(max_length=11, db_index=True, editable=False)
    capabilities = models.JSONField(default=list)
    topic_scopes = models.JSONField(null=True, blank=True)
    issued_by_member = models.ForeignKey(Member, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    issued_by_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # The member a bot holding this key acts as over REST (it holds that member's secret key and seals with it).
    member = models.ForeignKey(Member, null=True, blank=True, on_delete=models.SET_NULL, related_name="api_keys")
    created_at = models.DateTimeField(default=timezone.now)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["mesh", "-created_at"], name="api_key_mesh_created_idx")]
        verbose_name = "API key"

    def __str__(self) -> str:
        return f"{self.label} ({self.secret_prefix}…)"

    def status(self, now=None) -> str:
        now = now or timezone.now()
        if self.revoked_at:
            return "revoked"
        if self.expires_at and self.expires_at <= now:
            return "expired"
        return "active"

    def has_capability(self, capability: str) -> bool:
        return ApiKeyCapability.ADMIN in self.capabilities or capability in self.capabilities

    def allows_topic(self, name: str) -> bool:
        """Topic scopes (platform.md §2.5): None is every topic, else the names listed."""
        return self.topic_scopes is None or name in self.topic_scopes

    @property
    def acting_member(self) -> Member | None:
        """The bound member while it is still in the mesh."""
        member = self.member
        return member if member is not None and member.revoked_at is None and member.pubkey else None


class AuditEvent(models.Model):
    """Append-only, per-mesh SHA-256 chain over metadata (never message content).

    `(mesh, prev_hash)` is unique, so two writers can never extend the same link: the chain cannot fork.
    """

    id = models.BigAutoField(primary_key=True)
    mesh = models.ForeignKey(Mesh, on_delete=models.CASCADE, related_name="audit_events")
    event_type = models.CharField(max_length=64)
    actor_member_id = models.CharField(max_length=32, null=True, blank=True)  # noqa: DJ001 - hashed as "null"
    actor_display_name = models.CharField(max_length=200, null=True, blank=True)  # noqa: DJ001
    payload = models.JSONField(default=dict)
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64)
    created_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["mesh", "prev_hash"], name="audit_chain_no_fork")]
        indexes = [
            models.Index(fields=["mesh", "id"], name="audit_mesh_id_idx"),
            models.Index(fields=["created_at"], name="audit_created_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.event_type} #{self.id}"
