"""The routes a signed-in terminal calls (protocol.md §6.6, client.md Appendix B), with the session token of
`claudemesh login` as the bearer: create, invite, delete and list meshes; the account's profile and meshes under
`/api/my/`, rename. Grants (`/cli/mesh/<slug>/grants`) take that token or a member-signed request.

Each route calls the same services as the dashboard with the account's own Actor, so the same rules apply and
every change is audited (`via: "cli"`).
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, JsonResponse

from accounts.cli_sessions import user_summary
from meshes import selectors, services, site
from meshes.actors import Actor
from meshes.api.cli_auth import cli_error, cli_route, requires_cli_user
from meshes.api.http import BadBody, json_object
from meshes.api.member_auth import signing_member
from meshes.errors import MeshError
from meshes.models import Member, Mesh, Role
from meshes.online import online_peers
from meshes.services.grants import member_grants_update
from meshes.services.invite_mail import invite_send_email
from protocol.encoding import iso_or_none


def _role_of(mesh: Mesh, user) -> tuple[str, Member | None]:
    member = selectors.live_membership(mesh=mesh, user=user)
    if mesh.owner_id == user.pk:
        return Role.OWNER, member
    return (member.role if member else Role.MEMBER), member


def mesh_entry(mesh: Mesh, user) -> dict[str, Any]:
    """One mesh as `/cli/meshes` lists it (and, trimmed, `/api/my/meshes`)."""
    role, member = _role_of(mesh, user)
    peers = online_peers(mesh_id=mesh.id) or []
    return {
        "id": mesh.id,
        "slug": mesh.slug,
        "name": mesh.name,
        "role": role,
        "is_owner": role == Role.OWNER,
        "member_count": getattr(mesh, "member_count", None),
        "active_peers": len(peers),
        "joined_at": iso_or_none(member.joined_at if member else mesh.created_at),
        "member_id": member.id if member else None,
        "broker_url": site.broker_ws_url(),
    }


def _live_meshes(user):
    return selectors.meshes_for_user(user=user).filter(archived_at=None)


# --- /cli/mesh/… --------------------------------------------------------------------------------------------


@requires_cli_user
def _create(request: HttpRequest, user) -> JsonResponse:
    body = json_object(request)
    if not isinstance(body.get("name"), str) or not body["name"].strip():
        return cli_error("invalid_args", "name required", 400)
    pubkey = body.get("pubkey")
    if pubkey is None:
        return cli_error("invalid_args", "pubkey required (64 hex chars)", 400)
    mesh = services.mesh_create(owner=user, name=body["name"], owner_member_pubkey=pubkey, via="cli")
    member = selectors.live_membership(mesh=mesh, user=user)
    return JsonResponse({"id": mesh.id, "slug": mesh.slug, "name": mesh.name, "member_id": member.id,
                         "broker_url": site.broker_ws_url()})


def _days(value: Any) -> Any:
    """`expires_in`: days as a number, or the reference's ignored strings like "7d"."""
    if isinstance(value, str) and value.strip().lower().endswith("d") and value.strip()[:-1].isdigit():
        return int(value.strip()[:-1])
    return value


@requires_cli_user
def _invite(request: HttpRequest, user, slug: str) -> JsonResponse:
    body = json_object(request, allow_empty=True)
    actor = selectors.actor_for_user_mesh_ref(user=user, ref=slug)
    invite = services.invite_create(
        actor=actor,
        role=Role.ADMIN if body.get("role") == Role.ADMIN else Role.MEMBER,
        max_uses=body.get("max_uses", body.get("maxUses", 1)),
        expires_in_days=_days(body.get("expires_in_days", body.get("expires_in"))),
    )
    links = selectors.invite_links(invite=invite)
    emailed = False
    if body.get("email"):
        emailed = invite_send_email(actor=actor, invite=invite, email=body["email"], link=links["shortUrl"])
    return JsonResponse({
        "url": links["shortUrl"], "code": invite.code, "expires_at": iso_or_none(invite.expires_at),
        "emailed": emailed, "id": invite.id, "role": invite.role, "max_uses": invite.max_uses,
        "joinUrl": links["joinUrl"],
    })


@requires_cli_user
def _delete(request: HttpRequest, user, slug: str) -> JsonResponse:
    actor = selectors.actor_for_user_mesh_ref(user=user, ref=slug)
    if not actor.is_owner:
        return cli_error("forbidden", "Only the mesh owner can delete it", 403)
    mesh = services.mesh_archive(actor=actor)
    return JsonResponse({"ok": True, "deleted": mesh.slug, "id": mesh.id, "archived_at": iso_or_none(mesh.archived_at)})


@requires_cli_user
def _meshes(request: HttpRequest, user) -> JsonResponse:
    return JsonResponse({"meshes": [mesh_entry(mesh, user) for mesh in _live_meshes(user)]})


# --- grants: a member's signature or the account's token --------------------------------------------------


def _grants_actor(request: HttpRequest, slug: str) -> Actor | JsonResponse:
    member = signing_member(request, body=request.body)
    if member is not None:
        if slug not in (member.mesh.slug, member.mesh_id):
            return cli_error("forbidden", "the signing member is not in this mesh", 403)
        return selectors.actor_for_member(member_id=member.id, via="api")
    return _account_member_actor(request, slug=slug)


@requires_cli_user
def _account_member_actor(request: HttpRequest, user, slug: str) -> Actor | JsonResponse:
    """The account's own CLI member of the mesh (the reference merges into "the caller's own member row")."""
    actor = selectors.actor_for_user_mesh_ref(user=user, ref=slug)
    member = (
        Member.objects.select_related("mesh", "user")
        .filter(mesh=actor.mesh, user=user, revoked_at=None, pubkey__isnull=False).order_by("-joined_at").first()
    )
    if member is None:
        return cli_error("forbidden", "Not a member of this mesh (no CLI identity of yours is in it)", 403)
    return Actor(mesh=actor.mesh, member=member, via="cli")


def _grants_get(request: HttpRequest, slug: str) -> JsonResponse:
    actor = _grants_actor(request, slug)
    if isinstance(actor, JsonResponse):
        return actor
    return JsonResponse({"ok": True, "grants": actor.member.peer_grants or {}})


def _grants_post(request: HttpRequest, slug: str) -> JsonResponse:
    actor = _grants_actor(request, slug)
    if isinstance(actor, JsonResponse):
        return actor
    try:
        body = json_object(request)
        member = member_grants_update(actor=actor, grants=body.get("grants"))
    except BadBody as exc:
        return cli_error(exc.code, exc.message, exc.status)
    except MeshError as exc:
        return cli_error(exc.code, exc.message, exc.status)
    return JsonResponse({"ok": True, "grants": member.peer_grants})


# --- /api/my/… ------------------------------------------------------------------------------------------------


@requires_cli_user
def _profile(request: HttpRequest, user) -> JsonResponse:
    return JsonResponse(user_summary(user))


@requires_cli_user
def _my_meshes(request: HttpRequest, user) -> JsonResponse:
    """A bare list, as the reference CLI reads it (`owned` = entries whose role is `owner`)."""
    entries = [mesh_entry(mesh, user) for mesh in _live_meshes(user)]
    return JsonResponse([{k: e[k] for k in ("id", "slug", "name", "role", "member_count")} for e in entries],
                        safe=False)


@requires_cli_user
def _my_mesh_rename(request: HttpRequest, user, slug: str) -> JsonResponse:
    body = json_object(request)
    actor = selectors.actor_for_user_mesh_ref(user=user, ref=slug)
    mesh = services.mesh_rename(actor=actor, name=body.get("name"))
    return JsonResponse({"ok": True, "id": mesh.id, "slug": mesh.slug, "name": mesh.name})


mesh_create = cli_route(POST=_create)
mesh_invite = cli_route(POST=_invite)
mesh_delete = cli_route(DELETE=_delete)
meshes = cli_route(GET=_meshes)
grants = cli_route(GET=_grants_get, POST=_grants_post)
my_profile = cli_route(GET=_profile)
my_meshes = cli_route(GET=_my_meshes)
my_mesh = cli_route(PATCH=_my_mesh_rename)
