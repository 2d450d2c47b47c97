"""Shared files (protocol.md §5.17, §6.10): the server keeps ciphertext in the `files` storage and, per file, the
file key wrapped for each recipient (a member or session key, a group, or `*` through the keyring); it can open
neither. Metadata (name, size, who shared it with whom, who fetched it) stays visible: the list and the access log
are built from it."""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils import timezone

from protocol.ids import new_id


class FileStatus(models.TextChoices):
    PENDING = "pending"  # registered, bytes not (all) uploaded yet
    READY = "ready"


class SharedFileQuerySet(models.QuerySet):
    def kept(self) -> SharedFileQuerySet:
        """Not deleted (pending uploads included)."""
        return self.filter(deleted_at=None)

    def available(self) -> SharedFileQuerySet:
        """What can be listed and fetched: uploaded, not deleted, not past its expiry."""
        return self.kept().filter(status=FileStatus.READY).filter(Q(expires_at=None) | Q(expires_at__gt=timezone.now()))


class SharedFile(models.Model):
    id = models.CharField(primary_key=True, max_length=32, default=new_id, editable=False)
    mesh = models.ForeignKey("meshes.Mesh", on_delete=models.CASCADE, related_name="files")
    owner = models.ForeignKey("meshes.Member", null=True, on_delete=models.SET_NULL, related_name="+")
    owner_pubkey = models.CharField(max_length=64)  # the member key the wraps are made from
    owner_name = models.CharField(max_length=200)
    name = models.CharField(max_length=255)
    mime = models.CharField(max_length=200, default="application/octet-stream")
    tags = models.JSONField(default=list, blank=True)
    target_spec = models.CharField(max_length=200)  # who it was shared with: a key, `@group` or `*`
    size = models.PositiveBigIntegerField(default=0)  # plaintext bytes, as the sharer declares them (for lists)
    sealed_size = models.PositiveBigIntegerField()  # the declared ciphertext length; what the upload must be
    persistent = models.BooleanField(default=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    storage_key = models.CharField(max_length=300, default="")
    status = models.CharField(max_length=8, choices=FileStatus.choices, default=FileStatus.PENDING)
    created_at = models.DateTimeField(default=timezone.now)
    uploaded_at = models.DateTimeField(null=True, blank=True)
    deleted_at = models.DateTimeField(null=True, blank=True)

    objects = SharedFileQuerySet.as_manager()

    class Meta:
        indexes = [
            models.Index(fields=["mesh", "-created_at"], name="file_mesh_created_idx", condition=Q(deleted_at=None)),
            models.Index(fields=["expires_at"], name="file_expires_idx", condition=Q(deleted_at=None)),
        ]

    def __str__(self) -> str:
        return f"file {self.name} ({self.id[:8]})"


class FileKey(models.Model):
    """The file key wrapped for one recipient: `peer_pubkey` is a member or session key, `@group` or `*`."""

    file = models.ForeignKey(SharedFile, on_delete=models.CASCADE, related_name="keys")
    peer_pubkey = models.CharField(max_length=200)
    sealed_key = models.TextField()
    granted_by_pubkey = models.CharField(max_length=64)
    granted_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["file", "peer_pubkey"], name="file_key_unique")]

    def __str__(self) -> str:
        return f"key of {self.file_id[:8]} for {self.peer_pubkey[:12]}"


class FileAccess(models.Model):
    file = models.ForeignKey(SharedFile, on_delete=models.CASCADE, related_name="accesses")
    member = models.ForeignKey("meshes.Member", null=True, on_delete=models.SET_NULL, related_name="+")
    peer_name = models.CharField(max_length=200)
    accessed_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"{self.peer_name} fetched {self.file_id[:8]}"
