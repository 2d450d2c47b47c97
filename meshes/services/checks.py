"""What every service shares: the audit entry of an action, and the checks of names, numbers and live meshes."""

from __future__ import annotations

import re
from typing import Any

from meshes.actors import Actor
from meshes.audit import audit_append
from meshes.errors import Forbidden, NotFound, ServiceError
from meshes.models import Member, Mesh
from meshes.text import storable
from protocol.ids import is_id_fragment
from protocol.keyring import scope_signature_ok
from protocol.records import RecordError, parse_sealed

MAX_TAGS = 20
MAX_TAG_CHARS = 50


def audit(actor: Actor, event_type: str, payload: dict[str, Any]) -> None:
    audit_append(
        mesh_id=actor.mesh.id,
        event_type=event_type,
        actor_member_id=actor.member_id,
        actor_display_name=actor.display_name,
        payload={**payload, "via": actor.via},
    )


def require_live_mesh(mesh: Mesh) -> None:
    if mesh.is_archived:
        raise ServiceError("mesh_archived", "this mesh is archived")


CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f]")


def printable(text: str) -> str:
    """Drop control characters: Postgres refuses NUL in text, and none belongs in a name."""
    return CONTROL_CHARS.sub("", text)


def clean_name(name: Any, *, field: str, min_length: int, max_length: int) -> str:
    if not isinstance(name, str):
        raise ServiceError("invalid_args", f"{field} must be text")
    cleaned = " ".join(printable(" ".join(name.split())).split())
    if not storable(cleaned):  # a lone surrogate (a JSON escape) fails the insert: no UTF-8 store takes it
        raise ServiceError("invalid_args", f"{field} must be valid text")
    if not min_length <= len(cleaned) <= max_length:
        raise ServiceError("invalid_args", f"{field} must be {min_length}–{max_length} characters")
    return cleaned


def slugify_mesh_name(name: str) -> str:
    """Lowercase, runs of non-alphanumerics → '-', trimmed, at most 40 chars, 'mesh' when nothing is left."""
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:40].strip("-")
    return slug or "mesh"


def check_int(value: Any, *, field: str, low: int, high: int) -> int:
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


def user_display_name(user) -> str:
    """Full name, else the e-mail's local part: invite previews show this name to whoever holds a link."""
    return (user.get_full_name() or user.email.partition("@")[0] or user.username)[:100]


def clean_sealed(value: Any, *, actor: Actor, field: str) -> dict[str, str]:
    """A sealed record (docs/encryption.md "Coordination records") written and signed by the actor's member key:
    the server cannot read it, but it can refuse one that claims another author."""
    try:
        envelope, nonce = parse_sealed(value)
    except RecordError as exc:
        raise ServiceError("invalid_args", f"{field}: {exc}") from None
    member_key = (actor.member.pubkey or "").lower() if actor.member is not None else ""
    if envelope.author != member_key or not scope_signature_ok(envelope, mesh_id=actor.mesh.id, nonce=nonce):
        raise ServiceError("invalid_args", f"{field} must be sealed and signed with your own member key")
    return {"nonce": value["nonce"], "ciphertext": value["ciphertext"]}


def clean_tags(tags: Any) -> list[str]:
    if tags is None:
        return []
    if not isinstance(tags, list) or len(tags) > MAX_TAGS:
        raise ServiceError("invalid_args", f"tags must be a list of at most {MAX_TAGS} strings")
    cleaned = []
    for tag in tags:
        if not isinstance(tag, str) or not storable(tag) or not 1 <= len(tag.strip()) <= MAX_TAG_CHARS:
            raise ServiceError("invalid_args", f"each tag must be 1–{MAX_TAG_CHARS} characters of text")
        if tag.strip() not in cleaned:
            cleaned.append(printable(tag.strip()))
    return cleaned


def clean_text(value: Any, *, field: str, max_chars: int) -> str:
    """Free text (a memory, a task title): storable, 1–max_chars characters once stripped (newlines kept)."""
    if not isinstance(value, str) or not storable(value):
        raise ServiceError("invalid_args", f"{field} must be text")
    cleaned = value.strip()
    if not 1 <= len(cleaned) <= max_chars:
        raise ServiceError("invalid_args", f"{field} must be 1–{max_chars} characters")
    return cleaned


def require_moderator(actor: Actor, verb: str) -> None:
    """Owners and admins only, in §5.3's wording: `only owner or admin can kicked` (the close reason), `… can ban`,
    `… can unban`, `… can list bans`."""
    if not actor.is_manager:
        raise Forbidden("forbidden", f"only owner or admin can {verb}")


def require_member(actor: Actor):
    """The acting member: coordination is for members (an API key or a dashboard visitor holds no member key)."""
    if actor.member is None or not actor.member.is_active:
        raise Forbidden("forbidden", "only a member of this mesh can do that")
    return actor.member


def live_member_in_mesh(actor: Actor, member_id: Any) -> Member:
    """The mesh's live member `member_id`, locked for the write that follows; `member_not_found` otherwise."""
    if not is_id_fragment(member_id):
        raise NotFound("member_not_found", "no such member in this mesh")
    member = Member.objects.select_for_update().filter(mesh=actor.mesh, pk=member_id, revoked_at=None).first()
    if member is None:
        raise NotFound("member_not_found", "no such member in this mesh")
    return member
