"""Invites, both forms (protocol.md §6.3, §8.5; client.md §3): mint and revoke; join with a v1 token, claim
with a v2 short code, accept from the dashboard. Checks run in the reference's order, errors carry its codes."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from meshes import site
from meshes.actors import Actor
from meshes.audit import audit_append
from meshes.errors import Conflict, Gone, NotFound, ServiceError
from meshes.events import MeshEvent, MeshEventKind, publish_after_commit
from meshes.models import Invite, Member, Mesh, Role, token_digest
from meshes.services.checks import audit, check_int, printable, require_live_mesh, user_display_name
from meshes.services.topics import topic_subscribe_general, topic_subscriptions_carry
from protocol import invites as wire_invites
from protocol.crypto import CryptoError, seal
from protocol.encoding import HEX64, EncodingError, b64url_decode, b64url_encode
from protocol.identity_link import replace_valid
from protocol.ids import is_id_fragment, new_code, new_id

_INVITE_MINT_ATTEMPTS = 60


def _signed_v1_payload(mesh: Mesh, *, role: str, expires_unix: int, owner_secret: str) -> wire_invites.InvitePayloadV1:
    return wire_invites.v1_sign(
        wire_invites.InvitePayloadV1(
            mesh_id=mesh.id,
            mesh_slug=mesh.slug,
            broker_url=site.broker_ws_url(),
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
    require_live_mesh(actor.mesh)
    if role not in (Role.ADMIN, Role.MEMBER):
        raise ServiceError("invalid_args", "role must be admin or member")
    uses = check_int(max_uses, field="max uses", low=1, high=settings.INVITE_MAX_USES)
    if expires_in_days is None:
        expires_in_days = settings.INVITE_DEFAULT_DAYS
    days = check_int(expires_in_days, field="expiry (days)", low=1, high=settings.INVITE_MAX_DAYS)
    invite = _mint(actor, role=role, uses=uses, days=days, preset=preset)
    audit(
        actor,
        "invite_created",
        {"inviteId": invite.id, "role": role, "maxUses": uses, "expiresAt": int(invite.expires_at.timestamp())},
    )
    return invite


CLI_LINK_DAYS = 1


@transaction.atomic
def invite_create_cli_link(*, actor: Actor) -> Invite:
    """A personal, single-use link for the signed-in member's own CLI: `claudemesh join <link>` binds the CLI's key
    to this member (its name, its role) instead of adding a second member for the same person."""
    require_live_mesh(actor.mesh)
    member = actor.member
    if member is None or member.user_id is None:
        raise ServiceError("invalid_args", "only a signed-in member can link a CLI to their account")
    invite = _mint(actor, role=member.wire_role, uses=1, days=CLI_LINK_DAYS, preset=None, for_member=member)
    audit(actor, "cli_link_created", {"inviteId": invite.id, "memberId": member.id})
    return invite


def _mint(actor: Actor, *, role: str, uses: int, days: int, preset: dict[str, Any] | None,
          for_member: Member | None = None) -> Invite:
    mesh = actor.mesh
    newest_expiry = int((timezone.now() + timedelta(days=days)).timestamp())
    owner_secret = mesh.owner_secret_hex()
    invite = None
    for attempt in range(_INVITE_MINT_ATTEMPTS):
        # The v1 token has no nonce: two invites of one mesh with the same role and expiry second would be
        # the same token (unique, and /join's lookup key). Step the expiry back a second until it is free.
        expires_unix = newest_expiry - attempt
        payload = _signed_v1_payload(mesh, role=role, expires_unix=expires_unix, owner_secret=owner_secret)
        digest = token_digest(wire_invites.v1_encode(payload))
        if Invite.objects.filter(token_digest=digest).exists():
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
                    token_digest=digest,
                    token_mesh_slug=payload.mesh_slug,
                    token_broker_url=payload.broker_url,
                    code=new_code(),
                    role=role,
                    max_uses=uses,
                    preset=preset or {},
                    expires_at=datetime.fromtimestamp(expires_unix, tz=UTC),
                    created_by=actor.user(),
                    created_by_member=actor.member,
                    capability_v2=wire_invites.v2_capability(canonical_v2, owner_secret),
                    for_member=for_member,
                )
            break
        except IntegrityError:
            continue
    if invite is None:
        raise ServiceError("code_collision", "could not allocate an invite, try again", status=503)
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
        audit(actor, "invite_revoked", {"inviteId": invite.id})
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
    topic_subscribe_general(member=member)
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
    linked: bool = False  # bound to a dashboard account's member by a personal CLI link
    retired: Member | None = None  # the earlier identity that link replaced


def _js_truthy(value: Any) -> bool:
    """The reference's presence check is JavaScript truthiness: a number or an empty object is "present" and
    fails the later, more specific check instead."""
    return value is not None and value is not False and value != "" and value != 0


def invite_join_v1(
    *, invite_token: Any, invite_payload: Any, peer_pubkey: Any, display_name: Any, replaces: Any = None
) -> JoinResult:
    """`POST /join` (protocol.md §6.3): checks in the reference's order, errors with its codes. With a personal CLI
    link the key is bound to the link's member; `replaces` (signed by an earlier identity of the same person in
    this mesh, protocol/identity_link.py) retires that identity."""
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
    display = printable(display_name).strip()[:100] or f"peer-{peer_pubkey[:8]}"
    if replaces is not None and not isinstance(replaces, dict):
        raise ServiceError("invalid_args", "replaces must be an object {memberId, timestamp, signature}")
    for _attempt in range(2):  # a concurrent join of the same key loses the insert race once, then finds it
        try:
            return _join_v1_once(invite_token, invite_payload, peer_pubkey, display, replaces)
        except IntegrityError:
            continue
    raise ServiceError("member_insert_failed", "could not add the member, try again", status=500)


@transaction.atomic
def _join_v1_once(token: str, payload: dict, peer_pubkey: str, display_name: str, replaces: dict | None) -> JoinResult:
    # Lookups of text that cannot be stored (NUL) are misses, not database errors.
    mesh_id = payload["mesh_id"]
    mesh = None if "\x00" in mesh_id else Mesh.objects.filter(pk=mesh_id, archived_at=None).first()
    if mesh is None:
        raise ServiceError("mesh_not_found", "mesh not found")
    if not mesh.owner_pubkey:
        raise ServiceError("mesh_missing_owner_key", "mesh has no owner key")
    if mesh.owner_pubkey != payload["owner_pubkey"]:
        raise ServiceError("invite_owner_mismatch", "invite was not signed by this mesh's owner key")
    invite = Invite.objects.select_for_update().filter(token_digest=token_digest(token)).first()
    if invite is None:
        raise ServiceError("invite_not_found", "invite not found")
    if invite.mesh_id != mesh.id:
        raise ServiceError("invite_mesh_mismatch", "invite belongs to another mesh")
    if invite.revoked_at:
        raise ServiceError("invite_revoked", "invite revoked")
    if invite.expires_at <= timezone.now():
        raise ServiceError("invite_expired", "invite expired")
    if invite.for_member_id:
        return _link_cli(invite, peer_pubkey, replaces)
    existing = Member.objects.filter(mesh=mesh, pubkey=peer_pubkey, revoked_at=None).first()
    if existing:
        return JoinResult(existing, True)
    if not _consume_invite_use(invite):
        raise ServiceError("invite_exhausted", "invite has no uses left")
    return JoinResult(_join_member(invite=invite, pubkey=peer_pubkey, display_name=display_name), False)


def _link_cli(invite: Invite, peer_pubkey: str, replaces: dict | None) -> JoinResult:
    if invite.used_count >= invite.max_uses:
        raise ServiceError("invite_exhausted", "invite has no uses left")
    member = Member.objects.select_for_update().filter(pk=invite.for_member_id, revoked_at=None).first()
    if member is None:
        raise ServiceError("invite_revoked", "invite revoked")
    if member.pubkey == peer_pubkey:
        return JoinResult(member, True, linked=True)
    if member.pubkey:
        raise ServiceError("already_linked", "this account already has a CLI key in this mesh")
    retired = _retired_identity(invite.mesh_id, peer_pubkey, replaces, keep=member) if replaces else None
    if Member.objects.filter(mesh_id=invite.mesh_id, pubkey=peer_pubkey, revoked_at=None).exists():
        raise ServiceError("already_member", "that key is already another member of this mesh")
    if not _consume_invite_use(invite):
        raise ServiceError("invite_exhausted", "invite has no uses left")
    member.pubkey = peer_pubkey
    member.save(update_fields=["pubkey"])
    audit_append(
        mesh_id=invite.mesh_id,
        event_type="cli_linked",
        actor_member_id=member.id,
        actor_display_name=member.display_name,
        payload={"inviteId": invite.id, "memberId": member.id, "pubkey": peer_pubkey,
                 **({"retiredMemberId": retired.id} if retired else {})},
    )
    return JoinResult(member, False, linked=True, retired=retired)


def _retired_identity(mesh_id: str, new_pubkey: str, replaces: dict, *, keep: Member) -> Member:
    """The earlier member the joining CLI proves it is (by its key's signature); revoked here, in this transaction."""
    old_id = replaces.get("memberId")
    old = None
    if is_id_fragment(old_id) and old_id != keep.id:
        old = Member.objects.select_for_update().filter(mesh_id=mesh_id, pk=old_id, revoked_at=None).first()
    if old is None or not old.pubkey or not replace_valid(
        mesh_id=mesh_id, old_member_id=old.id, old_pubkey=old.pubkey, new_pubkey=new_pubkey,
        timestamp=replaces.get("timestamp"), signature=replaces.get("signature"),
    ):
        raise ServiceError("bad_replaces", "replaces: not signed by a live member of this mesh within 5 minutes")
    old.revoked_at = timezone.now()
    old.save(update_fields=["revoked_at"])
    topic_subscriptions_carry(from_member=old, to_member=keep)
    publish_after_commit(MeshEvent(MeshEventKind.MEMBER_REVOKED, mesh_id, {"memberId": old.id}))
    return old


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
    invite = Invite.objects.select_related("mesh").filter(code=code, revoked_at=None).first()
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
    if invite.for_member_id:
        raise ServiceError("personal_link", "a personal CLI link joins with `claudemesh join`, not a v2 claim")
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
    # A claim creates a member and uses the invite, or is refused: naming a key that is already a member must
    # not hand out the root key again without a use or an audit record.
    if pubkey and Member.objects.filter(mesh=mesh, pubkey=pubkey, revoked_at=None).exists():
        raise Conflict("already_member", "that peer_pubkey is already a member of this mesh")
    if not _consume_invite_use(invite):
        raise Gone("exhausted", "invite has no uses left")
    name = printable(display_name or "").strip() or f"member-{recipient_x25519_pubkey[:8]}"
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
        "broker_url": site.broker_ws_url(),
    }


@transaction.atomic
def invite_accept_for_user(*, code: str, user) -> Member:
    """A signed-in person opens a short link and joins the mesh's dashboard with the invite's role."""
    invite = _live_invite_by_code(code, lock=True)
    if invite.for_member_id:
        raise ServiceError("personal_link", "this link connects one member's CLI; run the command shown on this page")
    existing = (
        Member.objects.filter(mesh=invite.mesh, user=user, revoked_at=None).order_by("joined_at").first()
    )
    if existing or invite.mesh.owner_id == user.pk:
        return existing
    if not _consume_invite_use(invite):
        raise Gone("exhausted", "invite has no uses left")
    return _join_member(invite=invite, pubkey=None, display_name=user_display_name(user), user=user)
