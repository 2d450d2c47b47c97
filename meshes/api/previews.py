"""`GET /api/public/invite/<token>`: what a person sees before joining (platform.md §3.4). Read-only."""

from __future__ import annotations

from typing import Any

from django.utils import timezone

from meshes.models import Invite, Member, token_digest
from protocol import invites as wire_invites
from protocol.encoding import iso_or_none


def _invalid(reason: str, invite: Invite | None = None) -> dict[str, Any]:
    return {
        "valid": False,
        "reason": reason,
        "meshName": invite.mesh.name if invite else None,
        "inviterName": _inviter_name(invite) if invite else None,
        "expiresAt": iso_or_none(invite.expires_at) if invite else None,
    }


def _inviter_name(invite: Invite) -> str | None:
    # The member's display name, never the inviter's account e-mail: this route is public.
    return invite.created_by_member.display_name if invite.created_by_member else None


def invite_preview(*, token: str) -> dict[str, Any]:
    """`{valid: true, …}` or `{valid: false, reason, …}`; reasons in the reference's order: malformed,
    bad_signature, not_found, revoked, mesh_archived, expired, exhausted."""
    try:
        payload = wire_invites.v1_decode(token)
    except wire_invites.InviteError:
        return _invalid("malformed")
    if not wire_invites.v1_signature_valid(payload):
        return _invalid("bad_signature")
    invite = Invite.objects.select_related("mesh", "created_by_member").filter(token_digest=token_digest(token.strip())).first()
    if invite is None:
        return _invalid("not_found")
    if invite.revoked_at:
        return _invalid("revoked", invite)
    if invite.mesh.is_archived:
        return _invalid("mesh_archived", invite)
    if invite.expires_at <= timezone.now():
        return _invalid("expired", invite)
    if invite.used_count >= invite.max_uses:
        return _invalid("exhausted", invite)
    return {
        "valid": True,
        "meshName": invite.mesh.name,
        "meshSlug": invite.mesh.slug,
        "inviterName": _inviter_name(invite),
        "memberCount": Member.objects.filter(mesh=invite.mesh, revoked_at=None).count(),
        "role": invite.role,
        "expiresAt": iso_or_none(invite.expires_at),
        "maxUses": invite.max_uses,
        "usedCount": invite.used_count,
        "token": invite.token,
    }
