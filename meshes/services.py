"""Every write to meshes, members, invites and API keys. Views, the JSON API, the admin and the broker call
these and hold no rules of their own. Each service validates first (raising ServiceError), then acts inside
one transaction, then audits; events go out only after commit.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone

from meshes.actors import Actor
from meshes.audit import audit_append
from meshes.errors import Forbidden, Gone, NotFound, ServiceError
from meshes.events import MeshEvent, MeshEventKind, publish_after_commit
from meshes.keyvault import seal_secret
from meshes.models import ApiKey, ApiKeyCapability, Invite, Member, Mesh, Role
from meshes.text import storable
from protocol import invites as wire_invites
from protocol.crypto import CryptoError, SigningKeypair, random_key, seal
from protocol.encoding import HEX64, EncodingError, b64url_decode, b64url_encode
from protocol.ids import is_id_fragment, new_code, new_id

API_KEY_PREFIX = "cm_"
API_KEY_DISPLAY_PREFIX_LENGTH = 11
API_KEY_MIN_REVOKE_PREFIX = 6
API_KEY_SECRET = re.compile(r"^cm_[A-Za-z0-9_-]{43}$")


# --- helpers shared by the services below --------------------------------------------------------------


def _audit(actor: Actor, event_type: str, payload: dict[str, Any]) -> None:
    audit_append(
        mesh_id=actor.mesh.id,
        event_type=event_type,
        actor_member_id=actor.member_id,
        actor_display_name=actor.display_name,
        payload={**payload, "via": actor.via},
    )


def _require_live_mesh(mesh: Mesh) -> None:
    if mesh.is_archived:
        raise ServiceError("mesh_archived", "this mesh is archived")


_CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f]")


def _printable(text: str) -> str:
    """Drop control characters: Postgres refuses NUL in text, and none belongs in a name."""
    return _CONTROL_CHARS.sub("", text)


def _clean_name(name: Any, *, field: str, min_length: int, max_length: int) -> str:
    if not isinstance(name, str):
        raise ServiceError("invalid_args", f"{field} must be text")
    cleaned = " ".join(_printable(" ".join(name.split())).split())
    if not storable(cleaned):  # a lone surrogate (a JSON escape) fails the insert: no UTF-8 store takes it
        raise ServiceError("invalid_args", f"{field} must be valid text")
    if not min_length <= len(cleaned) <= max_length:
        raise ServiceError("invalid_args", f"{field} must be {min_length}–{max_length} characters")
    return cleaned


def slugify_mesh_name(name: str) -> str:
    """Lowercase, runs of non-alphanumerics → '-', trimmed, at most 40 chars, 'mesh' when nothing is left."""
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:40].strip("-")
    return slug or "mesh"


def _check_int(value: Any, *, field: str, low: int, high: int) -> int:
    if isinstance(value, bool):
        raise ServiceError("invalid_args", f"{field} must be a whole number")
    try:
        number = int(value)
    except (TypeError, ValueError, OverflowError):  # OverflowError: ±Infinity (JSON parsers accept it, 1e400 too)
        raise ServiceError("invalid_args", f"{field} must be a whole number") from None
    if isinstance(value, float) and not value.is_integer():
        raise ServiceError("invalid_args", f"{field} must be a whole number")
    if not low <= number <= high:
        raise ServiceError("invalid_args", f"{field} must be between {low} and {high}")
    return number


# --- meshes --------------------------------------------------------------------------------------------


@transaction.atomic
def mesh_create(*, owner, name: str) -> Mesh:
    cleaned = _clean_name(name, field="name", min_length=2, max_length=80)
    keypair = SigningKeypair.generate()
    mesh = Mesh.objects.create(
        name=cleaned,
        slug=slugify_mesh_name(cleaned),
        owner=owner,
        owner_pubkey=keypair.public_hex,
        owner_secret_key_sealed=seal_secret(keypair.secret_hex),
        root_key_sealed=seal_secret(b64url_encode(random_key())),
    )
    member = Member.objects.create(
        mesh=mesh, user=owner, display_name=_user_display_name(owner), role=Role.OWNER
    )
    _audit(Actor(mesh=mesh, member=member), "mesh_created", {"name": cleaned})
    return mesh


def _user_display_name(user) -> str:
    """Full name, else the e-mail's local part: invite previews show this name to whoever holds a link."""
    return (user.get_full_name() or user.email.partition("@")[0] or user.username)[:100]


@transaction.atomic
def mesh_rename(*, actor: Actor, name: str) -> Mesh:
    actor.require_manager()
    _require_live_mesh(actor.mesh)
    cleaned = _clean_name(name, field="name", min_length=2, max_length=80)
    mesh = Mesh.objects.select_for_update().get(pk=actor.mesh.pk)
    old_name = mesh.name
    mesh.name, mesh.slug = cleaned, slugify_mesh_name(cleaned)
    mesh.save(update_fields=["name", "slug"])
    _audit(actor, "mesh_renamed", {"from": old_name, "to": cleaned})
    return mesh


@transaction.atomic
def mesh_archive(*, actor: Actor) -> Mesh:
    actor.require_owner()
    mesh = Mesh.objects.select_for_update().get(pk=actor.mesh.pk)
    if mesh.archived_at is None:
        mesh.archived_at = timezone.now()
        mesh.save(update_fields=["archived_at"])
        _audit(actor, "mesh_archived", {})
        publish_after_commit(MeshEvent(MeshEventKind.MESH_ARCHIVED, mesh.id))
    return mesh


# --- members -------------------------------------------------------------------------------------------


def _member_in_mesh(actor: Actor, member_id: Any) -> Member:
    if not is_id_fragment(member_id):
        raise NotFound("member_not_found", "no such member in this mesh")
    member = Member.objects.select_for_update().filter(mesh=actor.mesh, pk=member_id, revoked_at=None).first()
    if member is None:
        raise NotFound("member_not_found", "no such member in this mesh")
    return member


@transaction.atomic
def member_set_role(*, actor: Actor, member_id: str, role: str) -> Member:
    actor.require_manager()
    _require_live_mesh(actor.mesh)
    if role not in (Role.ADMIN, Role.MEMBER):
        raise ServiceError("invalid_args", "role must be admin or member")
    member = _member_in_mesh(actor, member_id)
    if member.role == Role.OWNER:
        raise Forbidden("forbidden", "the owner's role cannot be changed")
    if member.role != role:
        old_role = member.role
        member.role = role
        member.save(update_fields=["role"])
        _audit(actor, "member_role_changed", {"memberId": member.id, "from": old_role, "to": role})
        publish_after_commit(MeshEvent(MeshEventKind.MEMBER_ROLE_CHANGED, actor.mesh.id, {"memberId": member.id, "role": role}))
    return member


@transaction.atomic
def member_remove(*, actor: Actor, member_id: str) -> Member:
    actor.require_manager()
    member = _member_in_mesh(actor, member_id)
    if member.role == Role.OWNER:
        raise Forbidden("forbidden", "the owner cannot be removed; archive the mesh instead")
    member.revoked_at = timezone.now()
    member.save(update_fields=["revoked_at"])
    _audit(actor, "member_removed", {"memberId": member.id, "pubkey": member.pubkey})
    publish_after_commit(MeshEvent(MeshEventKind.MEMBER_REVOKED, actor.mesh.id, {"memberId": member.id}))
    return member


# --- invites -------------------------------------------------------------------------------------------


_INVITE_MINT_ATTEMPTS = 60


def _signed_v1_payload(mesh: Mesh, *, role: str, expires_unix: int, owner_secret: str) -> wire_invites.InvitePayloadV1:
    return wire_invites.v1_sign(
        wire_invites.InvitePayloadV1(
            mesh_id=mesh.id,
            mesh_slug=mesh.slug,
            broker_url=settings.BROKER_WS_URL,
            expires_at=expires_unix,
            mesh_root_key=mesh.root_key_b64url(),
            role=role,
            owner_pubkey=mesh.owner_pubkey,
        ),
        owner_secret,
    )


@transaction.atomic
def invite_create(
    *,
    actor: Actor,
    role: str = Role.MEMBER,
    max_uses: Any = 1,
    expires_in_days: Any = None,
    preset: dict[str, Any] | None = None,
) -> Invite:
    """Mint one invite in both forms: a v1 signed token and a v2 capability with a short code.
    `expires_in_days` None: the site's INVITE_DEFAULT_DAYS, read at call time."""
    actor.require_manager()
    _require_live_mesh(actor.mesh)
    if role not in (Role.ADMIN, Role.MEMBER):
        raise ServiceError("invalid_args", "role must be admin or member")
    uses = _check_int(max_uses, field="max uses", low=1, high=settings.INVITE_MAX_USES)
    if expires_in_days is None:
        expires_in_days = settings.INVITE_DEFAULT_DAYS
    days = _check_int(expires_in_days, field="expiry (days)", low=1, high=settings.INVITE_MAX_DAYS)
    mesh = actor.mesh
    newest_expiry = int((timezone.now() + timedelta(days=days)).timestamp())
    owner_secret = mesh.owner_secret_hex()
    invite = None
    for attempt in range(_INVITE_MINT_ATTEMPTS):
        # The v1 token has no nonce: two invites of one mesh with the same role and expiry second would be
        # the same token (unique, and /join's lookup key). Step the expiry back a second until it is free.
        expires_unix = newest_expiry - attempt
        payload = _signed_v1_payload(mesh, role=role, expires_unix=expires_unix, owner_secret=owner_secret)
        token = wire_invites.v1_encode(payload)
        if Invite.objects.filter(token=token).exists():
            continue
        invite_id = new_id()
        canonical_v2 = wire_invites.v2_canonical(
            mesh_id=mesh.id, invite_id=invite_id, expires_at=expires_unix, role=role, owner_pubkey=mesh.owner_pubkey
        )
        try:
            with transaction.atomic():  # a concurrent twin or a short-code collision: try the next slot
                invite = Invite.objects.create(
                    id=invite_id,
                    mesh=mesh,
                    token=token,
                    token_bytes=payload.canonical(),
                    code=new_code(),
                    role=role,
                    max_uses=uses,
                    preset=preset or {},
                    expires_at=datetime.fromtimestamp(expires_unix, tz=UTC),
                    created_by=actor.user(),
                    created_by_member=actor.member,
                    capability_v2=wire_invites.v2_capability(canonical_v2, owner_secret),
                )
            break
        except IntegrityError:
            continue
    if invite is None:
        raise ServiceError("code_collision", "could not allocate an invite, try again", status=503)
    _audit(
        actor,
        "invite_created",
        {"inviteId": invite.id, "role": role, "maxUses": uses, "expiresAt": int(invite.expires_at.timestamp())},
    )
    return invite


@transaction.atomic
def invite_revoke(*, actor: Actor, invite_id: str) -> Invite:
    actor.require_manager()
    if not is_id_fragment(invite_id):
        raise NotFound("invite_not_found", "no such invite in this mesh")
    invite = Invite.objects.select_for_update().filter(mesh=actor.mesh, pk=invite_id).first()
    if invite is None:
        raise NotFound("invite_not_found", "no such invite in this mesh")
    if invite.revoked_at is None:
        invite.revoked_at = timezone.now()
        invite.save(update_fields=["revoked_at"])
        _audit(actor, "invite_revoked", {"inviteId": invite.id})
    return invite


def _consume_invite_use(invite: Invite) -> bool:
    """Atomically take one use; False when none is left. The row lock makes concurrent claims queue up."""
    return bool(
        Invite.objects.filter(pk=invite.pk, used_count__lt=F("max_uses")).update(used_count=F("used_count") + 1)
    )


def _join_member(*, invite: Invite, pubkey: str | None, display_name: str, user=None) -> Member:
    preset = invite.preset or {}
    member = Member.objects.create(
        mesh_id=invite.mesh_id,
        user=user,
        pubkey=pubkey,
        display_name=(preset.get("displayName") or display_name)[:100],
        role=invite.role,
        role_tag=preset.get("roleTag", "")[:64],
        default_groups=preset.get("groups", []),
        message_mode=preset.get("messageMode", "push"),
        invite=invite,
    )
    audit_append(
        mesh_id=invite.mesh_id,
        event_type="member_joined",
        actor_member_id=member.id,
        actor_display_name=member.display_name,
        payload={"inviteId": invite.id, "role": member.role, "pubkey": pubkey},
    )
    return member


@dataclass(frozen=True)
class JoinResult:
    member: Member
    already_member: bool


def _js_truthy(value: Any) -> bool:
    """The reference's presence check is JavaScript truthiness: a number or an empty object is "present" and
    fails the later, more specific check instead."""
    return value is not None and value is not False and value != "" and value != 0


def invite_join_v1(*, invite_token: Any, invite_payload: Any, peer_pubkey: Any, display_name: Any) -> JoinResult:
    """`POST /join` (protocol.md §6.3): checks in the reference's order, errors with its codes."""
    if not all(_js_truthy(v) for v in (invite_token, invite_payload, peer_pubkey, display_name)):
        raise ServiceError("invalid_args", "invite_token, invite_payload, peer_pubkey, display_name required")
    if not isinstance(peer_pubkey, str) or not HEX64.fullmatch(peer_pubkey):
        raise ServiceError("invalid_args", "peer_pubkey must be 64 hex chars (32 bytes)")
    if not isinstance(invite_payload, dict) or not isinstance(invite_token, str) or not isinstance(display_name, str):
        raise ServiceError("invalid_args", "invite_token, invite_payload, peer_pubkey, display_name required")
    try:
        wire_invites.check_v1_shape(invite_payload)
        signature_ok = wire_invites.v1_signature_valid(invite_payload)
    except wire_invites.InviteError:
        signature_ok = False
    if not signature_ok:
        raise ServiceError("invite_bad_signature", "invite signature invalid")
    peer_pubkey = peer_pubkey.lower()
    display = _printable(display_name).strip()[:100] or f"peer-{peer_pubkey[:8]}"
    for _attempt in range(2):  # a concurrent join of the same key loses the insert race once, then finds it
        try:
            return _join_v1_once(invite_token, invite_payload, peer_pubkey, display)
        except IntegrityError:
            continue
    raise ServiceError("member_insert_failed", "could not add the member, try again", status=500)


@transaction.atomic
def _join_v1_once(token: str, payload: dict, peer_pubkey: str, display_name: str) -> JoinResult:
    # Lookups of text that cannot be stored (NUL) are misses, not database errors.
    mesh_id = payload["mesh_id"]
    mesh = None if "\x00" in mesh_id else Mesh.objects.filter(pk=mesh_id, archived_at=None).first()
    if mesh is None:
        raise ServiceError("mesh_not_found", "mesh not found")
    if not mesh.owner_pubkey:
        raise ServiceError("mesh_missing_owner_key", "mesh has no owner key")
    if mesh.owner_pubkey != payload["owner_pubkey"]:
        raise ServiceError("invite_owner_mismatch", "invite was not signed by this mesh's owner key")
    invite = None if "\x00" in token else Invite.objects.select_for_update().filter(token=token).first()
    if invite is None:
        raise ServiceError("invite_not_found", "invite not found")
    if invite.mesh_id != mesh.id:
        raise ServiceError("invite_mesh_mismatch", "invite belongs to another mesh")
    if invite.revoked_at:
        raise ServiceError("invite_revoked", "invite revoked")
    if invite.expires_at <= timezone.now():
        raise ServiceError("invite_expired", "invite expired")
    existing = Member.objects.filter(mesh=mesh, pubkey=peer_pubkey, revoked_at=None).first()
    if existing:
        return JoinResult(existing, True)
    if not _consume_invite_use(invite):
        raise ServiceError("invite_exhausted", "invite has no uses left")
    return JoinResult(_join_member(invite=invite, pubkey=peer_pubkey, display_name=display_name), False)


def _live_invite_by_code(code: Any, *, lock: bool) -> Invite:
    """v2 checks in the reference's order: not_found (incl. archived mesh), revoked, expired, exhausted."""
    if not isinstance(code, str) or not re.fullmatch(r"[A-Za-z0-9]{4,16}", code):
        raise NotFound("not_found", "invite not found")
    queryset = Invite.objects.select_related("mesh")
    invite = (queryset.select_for_update(of=("self",)) if lock else queryset).filter(code=code).first()
    if invite is None or invite.mesh.is_archived:
        raise NotFound("not_found", "invite not found")
    if invite.revoked_at:
        raise Gone("revoked", "invite revoked")
    if invite.expires_at <= timezone.now():
        raise Gone("expired", "invite expired")
    if invite.used_count >= invite.max_uses:
        raise Gone("exhausted", "invite has no uses left")
    return invite


def invite_token_for_code(*, code: str) -> str:
    """Short link → v1 token (`GET /api/public/invite-code/<code>`). Unknown or revoked → not_found."""
    if not isinstance(code, str) or not re.fullmatch(r"[A-Za-z0-9]{4,16}", code):
        raise NotFound("not_found", "invite not found")
    invite = Invite.objects.filter(code=code, revoked_at=None).only("token").first()
    if invite is None:
        raise NotFound("not_found", "invite not found")
    return invite.token


@transaction.atomic
def invite_claim_v2(
    *, code: Any, recipient_x25519_pubkey: Any, peer_pubkey: Any = None, display_name: Any = None
) -> dict[str, str]:
    """`POST /invites/<code>/claim`: seal the root key to the claimant's x25519 key and create its member.

    With `peer_pubkey` (our extension) the member carries that ed25519 key and can say hello.
    """
    if not isinstance(recipient_x25519_pubkey, str) or len(recipient_x25519_pubkey) < 32:
        raise ServiceError("malformed", "recipient_x25519_pubkey must be base64url of 32 bytes")
    try:
        recipient = b64url_decode(recipient_x25519_pubkey)
    except EncodingError:
        raise ServiceError("malformed", "recipient_x25519_pubkey must be base64url of 32 bytes") from None
    if len(recipient) != 32:
        raise ServiceError("malformed", "recipient_x25519_pubkey must be base64url of 32 bytes")
    if peer_pubkey is not None and (not isinstance(peer_pubkey, str) or not HEX64.fullmatch(peer_pubkey)):
        raise ServiceError("malformed", "peer_pubkey must be 64 hex chars")
    if display_name is not None and not isinstance(display_name, str):
        raise ServiceError("malformed", "display_name must be text")
    invite = _live_invite_by_code(code, lock=True)
    mesh = invite.mesh
    canonical = wire_invites.v2_canonical(
        mesh_id=mesh.id,
        invite_id=invite.id,
        expires_at=int(invite.expires_at.timestamp()),
        role=invite.role,
        owner_pubkey=mesh.owner_pubkey,
    )
    if not wire_invites.v2_capability_valid(
        invite.capability_v2, expected_canonical=canonical, owner_pubkey=mesh.owner_pubkey
    ):
        raise ServiceError("bad_signature", "invite capability does not verify")
    try:
        sealed = seal(b64url_decode(mesh.root_key_b64url()), recipient)
    except CryptoError:
        raise ServiceError("malformed", "cannot seal to that key") from None
    pubkey = peer_pubkey.lower() if peer_pubkey else None
    member = Member.objects.filter(mesh=mesh, pubkey=pubkey, revoked_at=None).first() if pubkey else None
    if member is None:
        if not _consume_invite_use(invite):
            raise Gone("exhausted", "invite has no uses left")
        name = _printable(display_name or "").strip() or f"member-{recipient_x25519_pubkey[:8]}"
        member = _join_member(invite=invite, pubkey=pubkey, display_name=name)
    Invite.objects.filter(pk=invite.pk).update(claimed_by_pubkey=recipient_x25519_pubkey[:64])
    return {
        "sealed_root_key": b64url_encode(sealed),
        "mesh_id": mesh.id,
        "member_id": member.id,
        "owner_pubkey": mesh.owner_pubkey,
        "canonical_v2": canonical,
        # Additive (docs/wire-extensions.md): lets the claimant name the mesh and find its broker.
        "mesh_slug": mesh.slug,
        "broker_url": settings.BROKER_WS_URL,
    }


@transaction.atomic
def invite_accept_for_user(*, code: str, user) -> Member:
    """A signed-in person opens a short link and joins the mesh's dashboard with the invite's role."""
    invite = _live_invite_by_code(code, lock=True)
    existing = (
        Member.objects.filter(mesh=invite.mesh, user=user, revoked_at=None).order_by("joined_at").first()
    )
    if existing or invite.mesh.owner_id == user.pk:
        return existing
    if not _consume_invite_use(invite):
        raise Gone("exhausted", "invite has no uses left")
    return _join_member(invite=invite, pubkey=None, display_name=_user_display_name(user), user=user)


# --- API keys ------------------------------------------------------------------------------------------


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
) -> tuple[ApiKey, str]:
    """`expires_at`: a datetime, an ISO date or date-time string, or None. Returns the key and its secret. The secret exists only in this return value: store nothing else."""
    actor.require_manager()
    _require_live_mesh(actor.mesh)
    cleaned_label = _clean_name(label, field="label", min_length=1, max_length=100)
    caps = _check_capabilities(capabilities)
    expires_at = _check_expiry(expires_at)
    if topic_scopes is not None and (
        not isinstance(topic_scopes, list)
        or not all(isinstance(t, str) and t and not _CONTROL_CHARS.search(t) and storable(t) for t in topic_scopes)
    ):
        raise ServiceError("invalid_args", "topic scopes must be a list of topic names")
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
        expires_at=expires_at,
    )
    _audit(
        actor,
        "api_key_created",
        {"keyId": key.id, "label": cleaned_label, "capabilities": caps, "prefix": key.secret_prefix},
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
        _audit(actor, "api_key_revoked", {"keyId": key.id, "label": key.label})
    return RevokeOutcome("revoked", key_id=key.id)


def api_key_authenticate(*, secret: Any) -> ApiKey | None:
    """Bearer secret → its live key (mesh not archived), or None. Bumps last_used_at at most once a minute."""
    if not isinstance(secret, str) or not API_KEY_SECRET.fullmatch(secret):
        return None
    digest = _hash_secret(secret)
    key = ApiKey.objects.select_related("mesh").filter(secret_hash=digest).first()
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
