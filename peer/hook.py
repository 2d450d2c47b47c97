"""`claudemesh hook idle|working|dnd`, run by Claude Code's Stop / UserPromptSubmit hooks (client.md §2.3).

It must never disturb Claude Code: no output, exit 0 whatever happens, at most ~1 s per mesh. Each POST is
signed with the mesh's member key (docs/wire-extensions.md), so nobody else can set this session's status.
"""

from __future__ import annotations

import json
import os
import select
import sys

import httpx

from peer.config import ConfigStore, http_origin
from protocol.hooks import hook_signed_fields
from protocol.vocabulary import STATUSES

STDIN_WAIT_SECONDS = 0.5
STDIN_MAX_BYTES = 256 * 1024


def _debug(message: str) -> None:
    if os.environ.get("CLAUDEMESH_HOOK_DEBUG") == "1":
        print(f"[claudemesh hook] {message}", file=sys.stderr)


def read_payload() -> dict:
    """Claude Code's hook JSON on stdin, if any arrives quickly."""
    try:
        if sys.stdin is None or sys.stdin.isatty():
            return {}
        ready, _, _ = select.select([sys.stdin], [], [], STDIN_WAIT_SECONDS)
        if not ready:
            return {}
        data = json.loads(sys.stdin.read(STDIN_MAX_BYTES) or "{}")
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def run_hook(status: str, store: ConfigStore) -> int:
    if status not in STATUSES:
        return 0
    try:
        payload = read_payload()
        cwd = payload.get("cwd") or os.environ.get("CLAUDE_PROJECT_DIR") or os.getcwd()
        body = {"cwd": cwd, "pid": os.getppid(), "status": status, "session_id": payload.get("session_id") or ""}
        # One signed POST per mesh: the broker applies it only to that member's own sessions.
        for mesh in store.load().meshes:
            origin = http_origin(mesh.broker_url)
            signed = hook_signed_fields(
                mesh_id=mesh.mesh_id, member_id=mesh.member_id, secret_hex=mesh.secret_key, cwd=cwd, status=status
            )
            try:
                response = httpx.post(f"{origin}/hook/set-status", json={**body, **signed}, timeout=1.0)
                _debug(f"{origin} {mesh.slug}: {response.status_code} {response.text[:200]}")
            except httpx.HTTPError as exc:
                _debug(f"{origin} {mesh.slug}: {exc}")
    except Exception as exc:  # a hook never fails Claude Code
        _debug(f"error: {exc!r}")
    return 0
