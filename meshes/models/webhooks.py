"""Inbound webhooks (protocol.md §5.15, §6.9): a URL with a secret in it that CI or monitoring POSTs JSON to; every
member of the mesh gets the body as a `push` with `subtype:"webhook"`. The secrets are sealed at rest (the URL can be
shown again to managers) and looked up by digest."""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from meshes.keyvault import open_secret
from protocol.ids import new_id


class Webhook(models.Model):
    id = models.CharField(primary_key=True, max_length=32, default=new_id, editable=False)
    mesh = models.ForeignKey("meshes.Mesh", on_delete=models.CASCADE, related_name="webhooks")
    name = models.CharField(max_length=56)  # unique per mesh, deleted ones too (§5.15: names stay taken)
    secret_digest = models.CharField(max_length=64, unique=True)  # SHA-256 of the URL secret
    secret_sealed = models.TextField()
    # Optional GitHub-style `X-Hub-Signature-256` check: HMAC-SHA256 of the body under this secret.
    signing_secret_sealed = models.TextField(blank=True, default="")
    rate_per_minute = models.PositiveIntegerField(default=60)
    max_body_bytes = models.PositiveIntegerField(default=65_536)
    created_by = models.ForeignKey("meshes.Member", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    deleted_at = models.DateTimeField(null=True, blank=True)
    last_delivery_at = models.DateTimeField(null=True, blank=True)
    delivery_count = models.PositiveBigIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["mesh", "name"], name="webhook_mesh_name_unique")]

    def __str__(self) -> str:
        return f"webhook {self.name}"

    @property
    def active(self) -> bool:
        return self.deleted_at is None

    @property
    def signed(self) -> bool:
        return bool(self.signing_secret_sealed)

    def secret(self) -> str:
        return open_secret(self.secret_sealed)

    def signing_secret(self) -> str:
        return open_secret(self.signing_secret_sealed) if self.signing_secret_sealed else ""
