"""Writes to meshes and their members: create, rename, archive; set a member's role, remove a member. Each
validates first (raising ServiceError or Forbidden), then acts inside one transaction, then audits; events go
out only after commit."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from meshes.actors import Actor
from meshes.errors import Forbidden, ServiceError
from meshes.events import MeshEvent, MeshEventKind, publish_after_commit
from meshes.keyvault import seal_secret
from meshes.models import Member, Mesh, Role
from meshes.services.checks import (
    audit,
    clean_name,
    live_member_in_mesh,
    require_live_mesh,
    slugify_mesh_name,
    user_display_name,
)
from meshes.services.topics import topic_subscribe_general
from protocol.crypto import SigningKeypair, random_key
from protocol.encoding import HEX64, b64url_encode


@transaction.atomic
def mesh_create(*, owner, name: str, owner_member_pubkey: str | None = None, via: str = "dashboard") -> Mesh:
    """`owner_member_pubkey`: the creating terminal's ed25519 key (`claudemesh new`), so the owner member is that
    CLI identity, bound to the account; without it the owner is a dashboard-only member."""
    cleaned = clean_name(name, field="name", min_length=2, max_length=80)
    if owner_member_pubkey is not None and not (
        isinstance(owner_member_pubkey, str) and HEX64.fullmatch(owner_member_pubkey)
    ):
        raise ServiceError("invalid_args", "pubkey required (64 hex chars)")
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
        mesh=mesh, user=owner, display_name=user_display_name(owner), role=Role.OWNER,
        pubkey=owner_member_pubkey.lower() if owner_member_pubkey else None,
    )
    topic_subscribe_general(member=member)
    audit(Actor(mesh=mesh, member=member, via=via), "mesh_created", {"name": cleaned})
    return mesh


@transaction.atomic
def mesh_rename(*, actor: Actor, name: str) -> Mesh:
    """Changes the name people see. The slug stays: every peer's config, `--mesh <slug>` and every invite already
    handed out carry it, so renaming must not break them."""
    actor.require_manager()
    require_live_mesh(actor.mesh)
    cleaned = clean_name(name, field="name", min_length=2, max_length=80)
    mesh = Mesh.objects.select_for_update().get(pk=actor.mesh.pk)
    old_name = mesh.name
    mesh.name = cleaned
    mesh.save(update_fields=["name"])
    audit(actor, "mesh_renamed", {"from": old_name, "to": cleaned})
    return mesh


@transaction.atomic
def mesh_archive(*, actor: Actor) -> Mesh:
    actor.require_owner()
    mesh = Mesh.objects.select_for_update().get(pk=actor.mesh.pk)
    if mesh.archived_at is None:
        mesh.archived_at = timezone.now()
        mesh.save(update_fields=["archived_at"])
        audit(actor, "mesh_archived", {})
        publish_after_commit(MeshEvent(MeshEventKind.MESH_ARCHIVED, mesh.id))
    return mesh


# --- members -------------------------------------------------------------------------------------------


@transaction.atomic
def member_set_role(*, actor: Actor, member_id: str, role: str) -> Member:
    actor.require_manager()
    require_live_mesh(actor.mesh)
    if role not in (Role.ADMIN, Role.MEMBER):
        raise ServiceError("invalid_args", "role must be admin or member")
    member = live_member_in_mesh(actor, member_id)
    if member.role == Role.OWNER:
        raise Forbidden("forbidden", "the owner's role cannot be changed")
    if member.role != role:
        old_role = member.role
        member.role = role
        member.save(update_fields=["role"])
        audit(actor, "member_role_changed", {"memberId": member.id, "from": old_role, "to": role})
        publish_after_commit(MeshEvent(MeshEventKind.MEMBER_ROLE_CHANGED, actor.mesh.id, {"memberId": member.id, "role": role}))
    return member


@transaction.atomic
def member_remove(*, actor: Actor, member_id: str) -> Member:
    actor.require_manager()
    member = live_member_in_mesh(actor, member_id)
    if member.role == Role.OWNER:
        raise Forbidden("forbidden", "the owner cannot be removed; archive the mesh instead")
    member.revoked_at = timezone.now()
    member.save(update_fields=["revoked_at"])
    audit(actor, "member_removed", {"memberId": member.id, "pubkey": member.pubkey})
    publish_after_commit(MeshEvent(MeshEventKind.MEMBER_REVOKED, actor.mesh.id, {"memberId": member.id}))
    return member


MEMBER_NAME_MAX = 100


@transaction.atomic
def member_rename(*, actor: Actor, member_id: str, name: str) -> Member:
    """A member's lasting name: what peers address and see, whatever its sessions call themselves. A member renames
    itself; owners and admins rename anyone."""
    require_live_mesh(actor.mesh)
    cleaned = clean_name(name, field="name", min_length=1, max_length=MEMBER_NAME_MAX)
    if not actor.is_manager and (actor.member_id is None or actor.member_id != member_id):
        raise Forbidden("forbidden", "only the mesh owner, an admin or the member itself can rename a member")
    member = live_member_in_mesh(actor, member_id)
    if member.display_name != cleaned:
        old_name = member.display_name
        member.display_name = cleaned
        member.save(update_fields=["display_name"])
        audit(actor, "member_renamed", {"memberId": member.id, "from": old_name, "to": cleaned})
    return member
