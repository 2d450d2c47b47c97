"""API keys: mint (the secret exists only in the return value), revoke by id or unique prefix, authenticate
a bearer secret. Only the SHA-256 of a secret is stored."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from meshes.actors import Actor
from meshes.errors import ServiceError
from meshes.models import ApiKey, ApiKeyCapability
from meshes.services.checks import CONTROL_CHARS, audit, clean_name, live_member_in_mesh, require_live_mesh
from meshes.text import storable
from protocol.encoding import b64url_encode
from protocol.ids import is_id_fragment

API_KEY_PREFIX = "cm_"
API_KEY_DISPLAY_PREFIX_LENGTH = 11
API_KEY_MIN_REVOKE_PREFIX = 6
API_KEY_SECRET = re.compile(r"^cm_[A-Za-z0-9_-]{43}$")

def _hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def _check_capabilities(capabilities: Any) -> list[str]:
    if isinstance(capabilities, str):
        capabilities = [part.strip() for part in capabilities.split(",") if part.strip()]
    if not isinstance(capabilities, (list, tuple)) or not capabilities:
        raise ServiceError("invalid_args", "choose at least one capability (send, read, state_write, admin)")
    valid = set(ApiKeyCapability.values)
    unknown = [cap for cap in capabilities if not isinstance(cap, str) or cap not in valid]  # [{}] is unhashable
    if unknown:
        raise ServiceError("invalid_args", f"unknown capability: {', '.join(map(str, unknown))}")
    return sorted(set(capabilities), key=ApiKeyCapability.values.index)


def _check_expiry(value: Any) -> datetime | None:
    """An aware future moment, or None. A time without an offset ("2030-01-01", as `claudemesh apikey create
    --expires` passes it through) is UTC, as JavaScript's Date reads a date-only ISO string in the reference."""
    if value in (None, ""):
        return None
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise ServiceError("invalid_args", "expiresAt must be an ISO date") from None
    if not isinstance(value, datetime):
        raise ServiceError("invalid_args", "expiresAt must be an ISO date")
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    try:  # 9999-12-31T23:59:59-14:00 is year 10000 in UTC: stored, no row of this mesh could be read back
        value = value.astimezone(UTC)
    except OverflowError:
        raise ServiceError("invalid_args", "expiry is out of range") from None
    if value <= timezone.now():
        raise ServiceError("invalid_args", "expiry must be in the future")
    return value


@transaction.atomic
def api_key_create(
    *,
    actor: Actor,
    label: Any,
    capabilities: Any,
    expires_at: Any = None,
    topic_scopes: list[str] | None = None,
    member_id: Any = None,
) -> tuple[ApiKey, str]:
    """`expires_at`: a datetime, an ISO date or date-time string, or None. `member_id`: the member the key acts as
    over REST (a live member with a key); None binds the issuing member when it has a key (a terminal's), else
    nothing. Returns the key and its secret. The secret exists only in this return value: store nothing else."""
    actor.require_manager()
    require_live_mesh(actor.mesh)
    cleaned_label = clean_name(label, field="label", min_length=1, max_length=100)
    caps = _check_capabilities(capabilities)
    expires_at = _check_expiry(expires_at)
    if topic_scopes is not None and (
        not isinstance(topic_scopes, list)
        or not all(isinstance(t, str) and t and not CONTROL_CHARS.search(t) and storable(t) for t in topic_scopes)
    ):
        raise ServiceError("invalid_args", "topic scopes must be a list of topic names")
    if member_id not in (None, ""):
        member = live_member_in_mesh(actor, member_id)
        if not member.pubkey:
            raise ServiceError("invalid_args", "that member has no key to sign with: bind a member that joined from a terminal")
    else:
        member = actor.member if actor.member is not None and actor.member.pubkey else None
    secret = API_KEY_PREFIX + b64url_encode(secrets.token_bytes(32))
    key = ApiKey.objects.create(
        mesh=actor.mesh,
        label=cleaned_label,
        secret_hash=_hash_secret(secret),
        secret_prefix=secret[:API_KEY_DISPLAY_PREFIX_LENGTH],
        capabilities=caps,
        topic_scopes=topic_scopes,
        issued_by_member=actor.member,
        issued_by_user=actor.user(),
        member=member,
        expires_at=expires_at,
    )
    audit(
        actor,
        "api_key_created",
        {"keyId": key.id, "label": cleaned_label, "capabilities": caps, "prefix": key.secret_prefix,
         "memberId": key.member_id},
    )
    return key, secret


@dataclass(frozen=True)
class RevokeOutcome:
    status: str  # revoked | not_found | not_unique
    key_id: str | None = None
    matches: int | None = None


@transaction.atomic
def api_key_revoke(*, actor: Actor, key_ref: Any) -> RevokeOutcome:
    """Revoke by full id or a unique id prefix (≥ 6 chars), only within the actor's mesh. Idempotent."""
    actor.require_manager()
    ref = key_ref.strip() if isinstance(key_ref, str) else ""
    if not ref:
        raise ServiceError("invalid_args", "give the key's id or an id prefix")
    if not is_id_fragment(ref):
        raise ServiceError("invalid_args", "a key id is made only of letters and digits")
    if len(ref) < API_KEY_MIN_REVOKE_PREFIX:
        raise ServiceError("invalid_args", f"an id prefix must be at least {API_KEY_MIN_REVOKE_PREFIX} characters")
    # Compared in Python: ids are case-sensitive, and SQLite's LIKE is not.
    candidates = ApiKey.objects.filter(mesh=actor.mesh).filter(Q(pk=ref) | Q(pk__istartswith=ref))
    exact = [key_id for key_id in candidates.values_list("id", flat=True) if key_id == ref]
    matches = exact or [key_id for key_id in candidates.values_list("id", flat=True) if key_id.startswith(ref)]
    if not matches:
        return RevokeOutcome("not_found")
    if len(matches) > 1:
        return RevokeOutcome("not_unique", matches=len(matches))
    key = ApiKey.objects.select_for_update().get(pk=matches[0])
    if key.revoked_at is None:
        key.revoked_at = timezone.now()
        key.save(update_fields=["revoked_at"])
        audit(actor, "api_key_revoked", {"keyId": key.id, "label": key.label})
    return RevokeOutcome("revoked", key_id=key.id)


def api_key_authenticate(*, secret: Any) -> ApiKey | None:
    """Bearer secret → its live key (mesh not archived), or None. Bumps last_used_at at most once a minute."""
    if not isinstance(secret, str) or not API_KEY_SECRET.fullmatch(secret):
        return None
    digest = _hash_secret(secret)
    key = ApiKey.objects.select_related("mesh", "member").filter(secret_hash=digest).first()
    if key is None or not hmac.compare_digest(key.secret_hash, digest):
        return None
    now = timezone.now()
    if key.status(now) != "active" or key.mesh.is_archived:
        return None
    stale_before = now - timedelta(seconds=settings.API_KEY_LAST_USED_RESOLUTION_SECONDS)
    if key.last_used_at is None or key.last_used_at < stale_before:
        ApiKey.objects.filter(pk=key.pk).filter(Q(last_used_at=None) | Q(last_used_at__lt=stale_before)).update(
            last_used_at=now
        )
        key.last_used_at = now
    return key
