"""Inbound webhooks (protocol.md §5.15, §6.9): owners and admins create and delete them; `POST /hook/<meshId>/<secret>`
is authenticated here (the secret, then the optional HMAC signature). Names stay taken after deletion, as in the
reference. Creations and deletions are audited; deliveries are traffic and only counted on the row."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from meshes.actors import Actor
from meshes.errors import Conflict, ServiceError
from meshes.keyvault import seal_secret
from meshes.models import Mesh, Role, Webhook
from meshes.services.checks import audit, check_int, require_live_mesh
from meshes.site import app_url

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,55}$")  # "webhook:<name>" is a push's senderPubkey (64 chars)
SIGNATURE_PREFIX = "sha256="


def webhook_url(webhook: Webhook) -> str:
    return f"{app_url()}/hook/{webhook.mesh_id}/{webhook.secret()}"


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


@transaction.atomic
def webhook_create(*, actor: Actor, name: Any, signed: bool = False, rate_per_minute: Any = None,
                   max_body_bytes: Any = None) -> tuple[Webhook, str]:
    """(webhook, signing secret or ""): `signed` webhooks need `X-Hub-Signature-256` on every POST."""
    actor.require_manager()
    require_live_mesh(actor.mesh)
    if not isinstance(name, str) or not name.strip():
        raise ServiceError("invalid_webhook", "name is required")
    name = name.strip()
    if not NAME.fullmatch(name):
        raise ServiceError("invalid_webhook", "name: 1-56 letters, digits, '.', '_' or '-', starting with a letter or digit")
    rate = 60 if rate_per_minute is None else check_int(rate_per_minute, field="ratePerMinute", low=1, high=6000)
    size = 65_536 if max_body_bytes is None else check_int(max_body_bytes, field="maxBodyBytes", low=1024, high=1_048_576)
    secret = secrets.token_hex(32)  # §5.15: 64 hex characters
    signing_secret = secrets.token_hex(32) if signed else ""
    if Webhook.objects.filter(mesh=actor.mesh, name=name).exists():
        raise Conflict("webhook_exists", f'Webhook "{name}" already exists in this mesh')
    try:
        with transaction.atomic():
            webhook = Webhook.objects.create(
                mesh=actor.mesh, name=name, secret_digest=_digest(secret), secret_sealed=seal_secret(secret),
                signing_secret_sealed=seal_secret(signing_secret) if signing_secret else "",
                rate_per_minute=rate, max_body_bytes=size, created_by=actor.member,
            )
    except IntegrityError:  # a concurrent create of the same name
        raise Conflict("webhook_exists", f'Webhook "{name}" already exists in this mesh') from None
    audit(actor, "webhook_created", {"webhookId": webhook.id, "name": name, "signed": bool(signing_secret)})
    return webhook, signing_secret


@transaction.atomic
def webhook_delete(*, actor: Actor, name: Any) -> Webhook | None:
    """Deactivates it (its URL answers 401 from now on); None when the mesh has no active webhook by that name."""
    actor.require_manager()
    webhook = Webhook.objects.select_for_update().filter(mesh=actor.mesh, name=name, deleted_at=None).first() if (
        isinstance(name, str)) else None
    if webhook is None:
        return None
    webhook.deleted_at = timezone.now()
    webhook.save(update_fields=["deleted_at"])
    audit(actor, "webhook_deleted", {"webhookId": webhook.id, "name": webhook.name})
    return webhook


def webhook_authenticate(*, mesh_id: str, secret: str) -> Webhook | None:
    """The active webhook of a live mesh this URL secret opens, or None (the caller answers 401)."""
    if not re.fullmatch(r"[0-9a-f]{64}", secret or ""):
        return None
    webhook = Webhook.objects.select_related("mesh", "created_by").filter(secret_digest=_digest(secret)).first()
    if webhook is None or webhook.mesh_id != mesh_id or not webhook.active or webhook.mesh.is_archived:
        return None
    return webhook


def webhook_signature_valid(*, webhook: Webhook, body: bytes, header: str | None) -> bool:
    """Unsigned webhooks take any body; signed ones only a correct `sha256=<hex HMAC of the body>`."""
    if not webhook.signed:
        return True
    if not header or not header.startswith(SIGNATURE_PREFIX):
        return False
    expected = hmac.new(webhook.signing_secret().encode("utf-8"), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, header[len(SIGNATURE_PREFIX):].strip().lower())


def webhook_delivered(*, webhook: Webhook) -> None:
    Webhook.objects.filter(pk=webhook.pk).update(delivery_count=F("delivery_count") + 1, last_delivery_at=timezone.now())


def webhook_sender_member_id(webhook: Webhook) -> str:
    """Who the stored messages are from (a message needs a member): its creator, else the mesh owner's member."""
    if webhook.created_by_id:
        return webhook.created_by_id
    mesh: Mesh = webhook.mesh
    return mesh.members.filter(role=Role.OWNER).values_list("id", flat=True).first() or ""
