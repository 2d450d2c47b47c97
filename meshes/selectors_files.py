"""Reads of shared files: what a member may see (what it shared, and what was shared with it), and who fetched
a file."""

from __future__ import annotations

from typing import Any

from django.db.models import Q, QuerySet

from meshes.actors import Actor
from meshes.errors import Forbidden, NotFound
from meshes.models import FileAccess, SharedFile
from meshes.services.checks import require_member
from meshes.text import storable
from protocol.ids import is_id_fragment

LIST_LIMIT = 100


def key_candidates(*, member_pubkey: str | None, session_pubkey: str | None, groups: list[str]) -> list[str]:
    """Who a caller is for a file key, best first: its session key, its member key, each group it is in (`@a/b`
    is also in `@a`: groups are hierarchical), then `*`."""
    candidates = [k for k in (session_pubkey, member_pubkey) if k]
    for group in groups:
        parts = group.split("/")
        candidates += [f"@{'/'.join(parts[:n])}" for n in range(len(parts), 0, -1)]
    return [*dict.fromkeys(candidates), "*"]


def file_of_mesh(*, actor: Actor, file_id: Any, available: bool = True, lock: bool = False) -> SharedFile:
    """The mesh's file `file_id`: one that can be fetched, or (`available=False`) any not deleted."""
    rows = SharedFile.objects.available() if available else SharedFile.objects.kept()
    rows = rows.select_for_update() if lock else rows
    file = rows.filter(mesh=actor.mesh, pk=file_id).first() if is_id_fragment(file_id) else None
    if file is None:
        raise NotFound("not_found", "file not found")
    return file


def files_visible(*, actor: Actor, session_pubkey: str | None = None, groups: list[str] | None = None,
                  query: Any = None, uploader: Any = None) -> QuerySet[SharedFile]:
    """[PY] Only the files the caller shared or holds a key for (the reference listed every file of the mesh),
    newest first, at most 100; `query` matches the name, `uploader` the sharer's name (both case-insensitive)."""
    member = require_member(actor)
    keys = key_candidates(member_pubkey=member.pubkey, session_pubkey=session_pubkey, groups=groups or [])
    rows = SharedFile.objects.available().filter(mesh=actor.mesh).filter(
        Q(owner=member) | Q(keys__peer_pubkey__in=keys)).distinct()
    if isinstance(query, str) and query and storable(query):
        rows = rows.filter(name__icontains=query)
    if isinstance(uploader, str) and uploader and storable(uploader):
        rows = rows.filter(owner_name__iexact=uploader)
    return rows.order_by("-created_at")[:LIST_LIMIT]


def file_accesses(*, file: SharedFile) -> QuerySet[FileAccess]:
    return file.accesses.order_by("-accessed_at")[:500]


def files_count(*, mesh_id: str) -> int:
    return SharedFile.objects.available().filter(mesh_id=mesh_id).count()


def file_for_status(*, actor: Actor, file_id: Any) -> SharedFile:
    """A file's access log is for its owner, the mesh's owners and admins, and those it was shared with."""
    member = require_member(actor)
    file = file_of_mesh(actor=actor, file_id=file_id, available=False)
    if file.owner_id != member.id and not actor.is_manager and not file.keys.filter(
        peer_pubkey__in=key_candidates(member_pubkey=member.pubkey, session_pubkey=None, groups=[])
    ).exists():
        raise Forbidden("forbidden", "only the file's owner, a mesh owner/admin or a recipient can see who fetched it")
    return file
