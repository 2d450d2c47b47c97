"""`remember`, `recall`, `forget` (protocol.md §5.5): sealed memories with blind tokens from our clients,
plaintext ones from reference clients (docs/encryption.md "Blind search")."""

from __future__ import annotations

from typing import Any

from broker import wire_coordination
from broker.handlers.registry import handler, run_for_member
from meshes import selectors_coordination
from meshes.errors import ServiceError
from meshes.services.memory import clean_tokens, memory_forget, memory_remember
from meshes.text import storable

MAX_QUERY_CHARS = 1000


def _remember(actor, frame: dict[str, Any]) -> dict[str, Any]:
    memory = memory_remember(actor=actor, content=frame.get("content"), tags=frame.get("tags"),
                             sealed=frame.get("sealed"), tokens=frame.get("tokens"))
    return wire_coordination.memory_stored(memory)


def _recall(actor, frame: dict[str, Any]) -> dict[str, Any]:
    query, tokens = frame.get("query"), frame.get("tokens")
    if query is not None and (not isinstance(query, str) or len(query) > MAX_QUERY_CHARS or not storable(query)):
        raise ServiceError("invalid_args", f"query must be text of at most {MAX_QUERY_CHARS} characters")
    if not query and tokens is None:
        raise ServiceError("invalid_args", "recall needs a query (or blind tokens)")
    tokens = clean_tokens(tokens, required=False) if tokens is not None else None
    return wire_coordination.memory_results(
        selectors_coordination.memory_recall(mesh_id=actor.mesh.id, query=query, tokens=tokens)
    )


def _forget(actor, frame: dict[str, Any]) -> dict[str, Any]:
    memory_id = frame.get("memoryId")
    return wire_coordination.memory_forgotten(memory_id, memory_forget(actor=actor, memory_id=memory_id))


@handler("remember")
async def handle_remember(conn, frame) -> None:
    await run_for_member(conn, frame, _remember)


@handler("recall")
async def handle_recall(conn, frame) -> None:
    await run_for_member(conn, frame, _recall)


@handler("forget")
async def handle_forget(conn, frame) -> None:
    await run_for_member(conn, frame, _forget)


