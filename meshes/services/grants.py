"""Per-peer grants (protocol.md §7.3): what each sender may do to one recipient member, kept on the recipient's
row as `{sender pubkey: [capability, …]}`. A sender with no entry has the defaults; an empty list blocks it.
The member sets its own; owners and admins set anyone's. Every change is audited."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from meshes.actors import Actor
from meshes.errors import Forbidden, ServiceError
from meshes.models import Member
from meshes.services.checks import audit, live_member_in_mesh, require_live_mesh
from protocol.encoding import HEX64
from protocol.vocabulary import GRANTS, grant_named

MAX_GRANT_ENTRIES = 1000


def _clean_caps(caps: Any, *, key: str) -> list[str] | None:
    if caps is None:
        return None
    if not isinstance(caps, list) or not all(isinstance(cap, str) for cap in caps):
        raise ServiceError("invalid_args", f"grants[{key[:12]}…] must be a list of capabilities or null")
    cleaned = []
    for word in caps:
        cap = grant_named(word)
        if cap is None:
            raise ServiceError("invalid_args", f"unknown capability {word[:40]!r}: one of {', '.join(GRANTS)}")
        if cap not in cleaned:
            cleaned.append(cap)
    return cleaned


def clean_grant_changes(grants: Any) -> dict[str, list[str] | None]:
    """`{pubkey: caps | null}` with 64-hex keys and known capabilities (`files` is `file-read`)."""
    if not isinstance(grants, dict) or not grants:
        raise ServiceError("invalid_args", "grants must be an object of {pubkey: [capabilities] or null}")
    changes = {}
    for key, caps in grants.items():
        if not isinstance(key, str) or not HEX64.fullmatch(key.lower()):
            raise ServiceError("invalid_args", "each grants key must be a 64-hex member or session pubkey")
        changes[key.lower()] = _clean_caps(caps, key=key)
    return changes


def _recipient(actor: Actor, member_id: Any) -> Member:
    own = member_id is None or member_id == actor.member_id
    if not own and not actor.is_manager:
        raise Forbidden("forbidden", "only the mesh owner or an admin can set another member's grants")
    return live_member_in_mesh(actor, actor.member_id if own else member_id)


@transaction.atomic
def member_grants_update(*, actor: Actor, grants: Any, member_id: Any = None) -> Member:
    """Merge `grants` into the recipient's map (the actor's own member unless `member_id` names another): a list
    replaces that sender's entry, null removes it (back to the defaults)."""
    require_live_mesh(actor.mesh)
    changes = clean_grant_changes(grants)
    member = _recipient(actor, member_id)
    current = dict(member.peer_grants) if isinstance(member.peer_grants, dict) else {}
    for key, caps in changes.items():
        if caps is None:
            current.pop(key, None)
        else:
            current[key] = caps
    if len(current) > MAX_GRANT_ENTRIES:
        raise ServiceError("invalid_args", f"at most {MAX_GRANT_ENTRIES} grant entries per member")
    if current != member.peer_grants:
        member.peer_grants = current
        member.save(update_fields=["peer_grants"])
        audit(actor, "member_grants_changed", {"memberId": member.id, "changes": changes})
    return member
