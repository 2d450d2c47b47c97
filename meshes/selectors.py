"""Reads. Every query that takes a mesh is bounded to it; visibility rules live here, once."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.paginator import Page, Paginator
from django.db.models import Case, Count, IntegerField, OuterRef, Q, QuerySet, Subquery, Value, When
from django.db.models.functions import Coalesce

from meshes import site
from meshes.actors import Actor
from meshes.errors import Forbidden, NotFound, ServiceError
from meshes.models import ApiKey, AuditEvent, Invite, Member, Mesh, Role, Webhook, token_digest
from meshes.services.checks import require_moderator
from protocol.ids import ID_LENGTH, is_id_fragment
from protocol.vocabulary import grants_allow

_ROLE_RANK = Case(
    When(role=Role.OWNER, then=Value(0)),
    When(role=Role.ADMIN, then=Value(1)),
    default=Value(2),
    output_field=IntegerField(),
)


def meshes_for_user(*, user) -> QuerySet[Mesh]:
    """Meshes the user owns or belongs to (live membership), newest first, with active member counts."""
    # The count is a subquery: counting over the membership join would count only the user's own rows.
    live_members = (
        Member.objects.filter(mesh=OuterRef("pk"), revoked_at=None).order_by().values("mesh").annotate(n=Count("id"))
    )
    mine = Member.objects.filter(user=user, revoked_at=None).values("mesh_id")
    return (
        Mesh.objects.filter(Q(owner=user) | Q(id__in=mine))
        .annotate(member_count=Coalesce(Subquery(live_members.values("n")), 0))
        .order_by("-created_at")
    )


def actor_for_user(*, mesh_id: str, user, via: str = "dashboard") -> Actor:
    """The user's strongest live membership of the mesh; NotFound for everyone else (no existence leak)."""
    if not getattr(user, "is_authenticated", False) or not is_id_fragment(mesh_id):
        raise NotFound("mesh_not_found", "mesh not found")
    member = (
        Member.objects.select_related("mesh", "user")
        .filter(mesh_id=mesh_id, user=user, revoked_at=None)
        .order_by(_ROLE_RANK, "joined_at")
        .first()
    )
    if member is None:
        raise NotFound("mesh_not_found", "mesh not found")
    return Actor(mesh=member.mesh, member=member, via=via)


def actor_for_user_mesh_ref(*, user, ref: Any, via: str = "cli") -> Actor:
    """The user's live mesh a terminal names by slug or id (slugs are not unique: the user's own mesh first, then
    the newest); NotFound for everyone else."""
    if not isinstance(ref, str) or not ref or len(ref) > 80:
        raise NotFound("mesh_not_found", "Mesh not found")
    candidates = (
        meshes_for_user(user=user).filter(archived_at=None).filter(Q(slug=ref) | Q(id=ref))
        .annotate(mine=Case(When(owner=user, then=Value(0)), default=Value(1), output_field=IntegerField()))
        .order_by("mine", "-created_at")
    )
    mesh = candidates.first()
    if mesh is None:
        raise NotFound("mesh_not_found", "Mesh not found")
    return actor_for_user(mesh_id=mesh.id, user=user, via=via)


def actor_for_staff(*, mesh: Mesh, user) -> Actor:
    """Site staff acting from the Django admin: the member-facing services apply, audited "via": "admin"."""
    actor = Actor(mesh=mesh, staff_user=user, via="admin")
    if not actor.is_staff:
        raise Forbidden("forbidden", "only site staff can do that")
    return actor


def actor_for_member(*, member_id: str, via: str = "broker") -> Actor:
    """A connected peer's member, re-read on every request: a role change or revocation applies at once."""
    member = Member.objects.select_related("mesh", "user").filter(pk=member_id).first()
    if member is None or member.revoked_at is not None:
        raise Forbidden("forbidden", "you are no longer a member of this mesh")
    return Actor(mesh=member.mesh, member=member, via=via)


def actor_for_api_key(*, api_key: ApiKey) -> Actor:
    return Actor(mesh=api_key.mesh, api_key=api_key, member=None, via="api")


def members_for_mesh(*, mesh: Mesh) -> QuerySet[Member]:
    return Member.objects.filter(mesh=mesh, revoked_at=None).select_related("user").order_by(_ROLE_RANK, "joined_at")


# Invites (their codes are the join capability), API keys (labels, prefixes) and the audit log (which names both)
# are for the mesh's owner and admins only: a plain member reading an admin invite's code could make himself admin.


def invites_for_manager(*, actor: Actor) -> QuerySet[Invite]:
    actor.require_manager()
    return (  # personal CLI links are their member's own business, not invites to hand out
        Invite.objects.filter(mesh=actor.mesh, for_member=None).select_related("created_by").order_by("-created_at")
    )


def api_keys_for_manager(*, actor: Actor) -> QuerySet[ApiKey]:
    """The mesh's keys, for its owner and admins only (what a peer or an admin key may list)."""
    actor.require_manager()
    return ApiKey.objects.filter(mesh=actor.mesh).order_by("-created_at")


def members_allowing(*, mesh_id: str, sender_keys: tuple[str | None, ...], capability: str) -> set[str] | None:
    """Ids of the mesh's members whose grants let this sender do `capability` to them; None when nobody refuses
    (the common case: no need to name everyone)."""
    members = Member.objects.filter(mesh_id=mesh_id, revoked_at=None)
    refusing = {
        member_id for member_id, grants in members.exclude(peer_grants={}).values_list("id", "peer_grants")
        if not grants_allow(grants, sender_keys=sender_keys, capability=capability)
    }
    if not refusing:
        return None
    return set(members.values_list("id", flat=True)) - refusing


def webhooks_for_manager(*, actor: Actor) -> QuerySet[Webhook]:
    """The mesh's active webhooks (their URLs carry the secret: owners and admins only)."""
    actor.require_manager()
    return Webhook.objects.filter(mesh=actor.mesh, deleted_at=None).order_by("created_at")


def bans_for_manager(*, actor: Actor) -> QuerySet[Member]:
    """The mesh's banned members, latest ban first ([PY] §10 item 10: owners and admins only)."""
    require_moderator(actor, "list bans")
    return Member.objects.filter(mesh=actor.mesh, banned_at__isnull=False).exclude(revoked_at=None).order_by("-banned_at")


def audit_events(*, actor: Actor, event_type: str | None = None, actor_member_id: str | None = None) -> QuerySet[AuditEvent]:
    """The mesh's chain, newest first, optionally only one event type and/or one actor."""
    actor.require_manager()
    events = AuditEvent.objects.filter(mesh=actor.mesh)
    if event_type:
        events = events.filter(event_type=event_type)
    if actor_member_id:
        events = events.filter(actor_member_id=actor_member_id)
    return events.order_by("-id")


def audit_page(*, actor: Actor, page_number, event_type: str | None = None, actor_member_id: str | None = None) -> Page:
    events = audit_events(actor=actor, event_type=event_type, actor_member_id=actor_member_id)
    return Paginator(events, settings.AUDIT_PAGE_SIZE).get_page(page_number)


def audit_positions(*, mesh: Mesh, up_to_id: int) -> dict[int, int]:
    """Event id → its 1-based place in the chain ("broken at event N"), for the events up to `up_to_id`."""
    ids = AuditEvent.objects.filter(mesh=mesh, id__lte=up_to_id).order_by("id").values_list("id", flat=True)
    return {event_id: position for position, event_id in enumerate(ids, start=1)}


def audit_facets(*, actor: Actor) -> tuple[list[str], list[tuple[str, str]]]:
    """What the filters offer: the event types in the chain, and its actors (member id, latest name)."""
    actor.require_manager()
    events = AuditEvent.objects.filter(mesh=actor.mesh)
    types = sorted(set(events.values_list("event_type", flat=True)))
    actors: dict[str, str] = {}
    for member_id, name in events.exclude(actor_member_id=None).order_by("id").values_list("actor_member_id", "actor_display_name"):
        actors[member_id] = name or member_id[:8]
    return types, sorted(actors.items(), key=lambda item: item[1].lower())


def invite_links(*, invite: Invite) -> dict[str, str]:
    """The three shapes a person can share: ic:// (v1), the web join URL (v1) and the short link (v2/code)."""
    return {
        "ic": f"ic://join/{invite.token}",
        "joinUrl": f"{site.app_url()}/join/{invite.token}",
        "shortUrl": f"{site.app_url()}/i/{invite.code}",
    }


def invite_by_code(*, code: str) -> Invite | None:
    if not is_id_fragment(code):
        return None
    return Invite.objects.select_related("mesh", "created_by").filter(code=code).first()


# --- dashboard pages ------------------------------------------------------------------------------------


def invite_by_token(*, token: str) -> Invite | None:
    """The invite behind a `/join/<token>` link, or None."""
    if not isinstance(token, str) or not token or len(token) > 4096:
        return None
    return Invite.objects.select_related("mesh", "created_by").filter(token_digest=token_digest(token)).first()


def live_membership(*, mesh: Mesh, user) -> Member | None:
    """The user's live membership of the mesh (strongest role first), or None; for public invite pages."""
    if not getattr(user, "is_authenticated", False):
        return None
    return Member.objects.filter(mesh=mesh, user=user, revoked_at=None).order_by(_ROLE_RANK, "joined_at").first()


ID_MIN_PREFIX = 6  # as short as the CLI prints ids (8) and API key prefixes allow (6)


def ids_matching(*, rows: QuerySet, ref: Any, limit: int = 2) -> list[str]:
    """Ids among `rows` that are `ref` or start with it (≥ 6 characters), at most `limit`: the short ids the CLI
    prints work wherever an id is asked for."""
    if not is_id_fragment(ref) or len(ref) < ID_MIN_PREFIX:
        return []
    if len(ref) == ID_LENGTH:
        return list(rows.filter(pk=ref).values_list("pk", flat=True))
    # Compared again in Python: ids are case-sensitive and SQLite's LIKE is not.
    candidates = rows.filter(pk__startswith=ref).values_list("pk", flat=True)
    return [found for found in candidates[:50] if found.startswith(ref)][:limit]


def id_for_ref(*, rows: QuerySet, ref: Any, plural: str) -> str | None:
    """The one id among `rows` that `ref` is or starts with (≥ 6 characters); None when none is, ServiceError
    `ambiguous` when several are."""
    matches = ids_matching(rows=rows, ref=ref)
    if len(matches) > 1:
        raise ServiceError("ambiguous", f"several {plural} start with {ref}: give more of the id")
    return matches[0] if matches else None
