"""The MCP tools for files: share one from the working directory with a peer, a group or everyone, and fetch one
into it. Both stay inside the directory Claude Code runs in: a peer's message must not be able to talk Claude into
sending ~/.ssh away or writing over a file elsewhere (or here: an existing file is never overwritten)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import mcp_types as types

from peer.connection_terms import RequestFailed
from peer.files import FileError, Files, human_size
from peer.mcp_coordination import MESH

if TYPE_CHECKING:
    from peer.client import MeshClient

TOOLS = [
    types.Tool(
        name="share_file",
        description="Share a file from this project with a peer (name), `@group` or `*`, end-to-end encrypted: a log, "
                    "a patch, a screenshot. The recipient gets a message with the file id. Only files inside the "
                    "working directory can be shared; up to 50 MB.",
        input_schema={"type": "object", "properties": {
            "path": {"type": "string", "description": "relative to the working directory"},
            "to": {"type": "string"}, "ephemeral": {"type": "boolean", "description": "delete it after a day"},
            **MESH,
        }, "required": ["path", "to"]},
    ),
    types.Tool(
        name="fetch_file",
        description="Fetch a file a peer shared (its id from the message or from `action: list`) and decrypt it into "
                    "the working directory (or `path` inside it). Never overwrites an existing file.",
        input_schema={"type": "object", "properties": {
            "action": {"type": "string", "enum": ["fetch", "list"], "default": "fetch"},
            "id": {"type": "string"}, "path": {"type": "string", "description": "a directory or file name inside the "
                                                                               "working directory"},
            **MESH,
        }},
    ),
]


def _inside(path_text: str, *, must_exist: bool) -> Path:
    root = Path.cwd().resolve()
    path = (root / path_text).resolve()
    if path != root and root not in path.parents:
        raise FileError(f"{path_text} is outside the working directory {root}", "forbidden")
    if must_exist and not path.is_file():
        raise FileError(f"{path_text} is not a file in the working directory", "not_found")
    return path


def _free(path: Path) -> Path:
    """`path`, or `name (1).ext`, `name (2).ext`, … when it is taken."""
    candidate, n = path, 1
    while candidate.exists():
        candidate = path.with_name(f"{path.stem} ({n}){path.suffix}")
        n += 1
    return candidate


async def tool_share_file(client: MeshClient, args: dict[str, Any]) -> tuple[str, bool]:
    try:
        path = _inside(str(args.get("path") or ""), must_exist=True)
        shared = await Files(client).share(path, str(args.get("to") or ""), persistent=not args.get("ephemeral"))
    except (FileError, RequestFailed, ValueError) as exc:
        return f"not shared: {exc}", True
    return (f"Shared {shared['name']} ({human_size(shared['size'])}, end-to-end encrypted) with {shared['label']}; "
            f"file id {shared['fileId']}. They were sent a message saying so."), False


async def tool_fetch_file(client: MeshClient, args: dict[str, Any]) -> tuple[str, bool]:
    files = Files(client)
    try:
        if args.get("action") == "list":
            rows = await files.list()
            lines = [f"- {f['id']}: {f['name']} ({human_size(int(f.get('size') or 0))}) from {f['uploadedBy']}"
                     for f in rows]
            return "\n".join(lines) or "No files have been shared with you.", False
        if not args.get("id"):
            return "`id` is required (or action: list)", True
        where = _inside(str(args.get("path") or "."), must_exist=False)
        staging = where if where.is_dir() else where.parent
        got = await files.fetch(str(args["id"]), out=staging / f".claudemesh-fetch-{args['id']}")
        final = _free(where / got["name"] if where.is_dir() else where)
        Path(got["path"]).rename(final)
    except (FileError, RequestFailed, ValueError, OSError) as exc:
        return f"not fetched: {exc}", True
    return f"Saved {final.relative_to(Path.cwd().resolve())} ({human_size(got['size'])}, from {got.get('uploadedBy')}).", False


HANDLERS: dict[str, Callable[[MeshClient, dict[str, Any]], Awaitable[tuple[str, bool]]]] = {
    "share_file": tool_share_file, "fetch_file": tool_fetch_file,
}  # fmt: skip
