"""Writes to a mesh's memory (protocol.md §5.5): remember and forget. Our clients' memories are sealed and come
with blind word tokens (docs/encryption.md "Blind search"); reference clients' memories are plaintext, searched
with Postgres full-text search. `forget` is a soft delete any member may do; the row
keeps who forgot it and when (coordination is traffic: it is not in the audit chain)."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone

from meshes.actors import Actor
from meshes.errors import ServiceError
from meshes.models import Memory, MemoryToken
from meshes.selectors import id_for_ref
from meshes.services.checks import clean_sealed, clean_tags, clean_text, require_live_mesh, require_member
from protocol.records import is_token

MAX_CONTENT_CHARS = 16_000
MAX_TOKENS = 512


def clean_tokens(tokens: Any, *, required: bool) -> list[str]:
    if tokens is None and not required:
        return []
    if not isinstance(tokens, list) or len(tokens) > MAX_TOKENS or (required and not tokens):
        raise ServiceError("invalid_args", f"tokens must be a list of 1–{MAX_TOKENS} blind tokens")
    if not all(is_token(token) for token in tokens):
        raise ServiceError("invalid_args", "each token must be 32 lowercase hex characters")
    return list(dict.fromkeys(tokens))


@transaction.atomic
def memory_remember(
    *, actor: Actor, content: Any = None, tags: Any = None, sealed: Any = None, tokens: Any = None
) -> Memory:
    member = require_member(actor)
    require_live_mesh(actor.mesh)
    if sealed is not None:
        memory = Memory(mesh=actor.mesh, sealed=clean_sealed(sealed, actor=actor, field="sealed"))
        words = clean_tokens(tokens, required=False)
    else:
        memory = Memory(mesh=actor.mesh, content=clean_text(content, field="content", max_chars=MAX_CONTENT_CHARS),
                        tags=clean_tags(tags))
        words = []
    memory.remembered_by, memory.remembered_by_name = member, member.display_name
    memory.save()
    MemoryToken.objects.bulk_create(MemoryToken(memory=memory, mesh_id=actor.mesh.id, token=t) for t in words)
    return memory


@transaction.atomic
def memory_forget(*, actor: Actor, memory_id: Any) -> bool:
    """True when a memory of this mesh was forgotten now (an unknown or already forgotten id is not an error).
    `memory_id` may be a unique prefix (≥ 6)."""
    member = require_member(actor)
    memory_id = id_for_ref(rows=Memory.objects.filter(mesh=actor.mesh, forgotten_at=None), ref=memory_id, plural="memories")
    if memory_id is None:
        return False
    forgotten = Memory.objects.filter(id=memory_id, forgotten_at=None).update(
        forgotten_at=timezone.now(), forgotten_by=member
    )
    if forgotten:
        MemoryToken.objects.filter(memory_id=memory_id).delete()  # a forgotten memory is never matched again
    return bool(forgotten)
