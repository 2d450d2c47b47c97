"""Reads of the mesh keyring (docs/encryption.md): who may hold a scope's key, what the caller holds, who holds
the current epoch, and which waiting requests a holder should answer. Everything read here is opaque to us."""

from __future__ import annotations

from dataclasses import dataclass, field

from django.db.models import Max

from broker.models import KeyRequest, KeyWrap, ScopeEpoch
from broker.services.liveness import live_presences
from meshes.errors import NotFound
from meshes.models import Member, Topic, TopicMember
from protocol.keyring import is_scope

TOPIC_PREFIX = "topic:"


def scope_member_keys(*, mesh_id: str, scope: str, member_ids: set[str] | None = None) -> dict[str, str] | None:
    """member id → pubkey of the members who may hold the scope's key (None: no such scope in this mesh). A topic's
    key is for its subscribers; `mesh` and `group:` keys for any member (a group's holders decide who is in it)."""
    if not is_scope(scope):
        return None
    members = Member.objects.filter(mesh_id=mesh_id, revoked_at=None, pubkey__isnull=False)
    if scope.startswith(TOPIC_PREFIX):
        topic_id = scope[len(TOPIC_PREFIX):]
        if not Topic.objects.filter(mesh_id=mesh_id, pk=topic_id, archived_at=None).exists():
            return None
        members = members.filter(pk__in=TopicMember.objects.filter(topic_id=topic_id).values("member_id"))
    if member_ids is not None:
        members = members.filter(pk__in=member_ids)
    return dict(members.values_list("id", "pubkey"))


def require_scope_members(*, mesh_id: str, scope: object) -> dict[str, str]:
    """`scope_member_keys`, or NotFound `scope_not_found`."""
    members = scope_member_keys(mesh_id=mesh_id, scope=scope) if isinstance(scope, str) else None
    if members is None:
        raise NotFound("scope_not_found", f"no key scope {scope!r} in this mesh (mesh, topic:<id> or group:<name>)")
    return members


def current_epoch(*, mesh_id: str, scope: str) -> int:
    return ScopeEpoch.objects.filter(mesh_id=mesh_id, scope=scope).aggregate(n=Max("epoch"))["n"] or 0


@dataclass(frozen=True)
class KeyListing:
    scope: str
    current: int
    wraps: list[tuple[int, str]]  # the caller's own: (epoch, CMK1 blob)
    holders: list[str]  # member ids holding the current epoch
    waiting: list[str] = field(default_factory=list)  # member ids with an open request


def key_listing(*, mesh_id: str, member_id: str, scope: str) -> KeyListing:
    current = current_epoch(mesh_id=mesh_id, scope=scope)
    own = KeyWrap.objects.filter(mesh_id=mesh_id, scope=scope, recipient_id=member_id).order_by("epoch")
    holders = KeyWrap.objects.filter(mesh_id=mesh_id, scope=scope, epoch=current).values_list("recipient_id", flat=True)
    waiting = KeyRequest.objects.filter(mesh_id=mesh_id, scope=scope).values_list("member_id", flat=True)
    return KeyListing(
        scope=scope,
        current=current,
        wraps=list(own.values_list("epoch", "wrap")),
        holders=sorted(holders) if current else [],
        waiting=sorted(waiting),
    )


def scope_holder_ids(*, mesh_id: str, scope: str) -> set[str]:
    """Members holding any epoch of the scope: who can re-share it."""
    return set(KeyWrap.objects.filter(mesh_id=mesh_id, scope=scope).values_list("recipient_id", flat=True).distinct())


def holds_epoch(*, mesh_id: str, scope: str, epoch: int, member_id: str) -> bool:
    return KeyWrap.objects.filter(mesh_id=mesh_id, scope=scope, epoch=epoch, recipient_id=member_id).exists()


def requests_for_holder(*, mesh_id: str, member_id: str) -> list[tuple[str, str, str]]:
    """(scope, requester member id, requester pubkey) of open requests in scopes this member holds."""
    scopes = KeyWrap.objects.filter(mesh_id=mesh_id, recipient_id=member_id).values("scope")
    rows = (
        KeyRequest.objects.filter(mesh_id=mesh_id, scope__in=scopes, member__revoked_at=None)
        .exclude(member_id=member_id)
        .select_related("member")
        .order_by("created_at")
    )
    return [(row.scope, row.member_id, row.member.pubkey or "") for row in rows[:100]]


def members_online(*, mesh_id: str, member_ids: set[str]) -> int:
    """How many of these members have a live session now."""
    if not member_ids:
        return 0
    live = live_presences().filter(mesh_id=mesh_id, member_id__in=member_ids)
    return live.values("member_id").distinct().count()
