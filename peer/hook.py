"""`claudemesh hook idle|working|dnd|inbox|wake`, run by Claude Code's hooks (client.md §2.3, docs/peer.md).

A status hook must never disturb Claude Code: no output, exit 0 whatever happens, at most ~1 s per mesh. Each POST
is signed with the mesh's member key (docs/wire-extensions.md), so nobody else can set this session's status.
`inbox` and `wake` hand mesh messages to the session (peer/hook_inbox.py).
"""

from __future__ import annotations

import json
import os
import select
import sys

from peer.config import ConfigStore, http_origin
from peer.hook_inbox import hook_inbox, hook_wake, prompt_arrived
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


HOOK_ACTIONS = (*STATUSES, "inbox", "wake")


def run_hook(action: str, store: ConfigStore) -> int:
    if action not in HOOK_ACTIONS:
        return 0
    payload = read_payload()
    try:
        if action == "inbox":
            return hook_inbox(store, payload)
        if action == "wake":
            return hook_wake(store, payload)
        if action == "working":
            prompt_arrived(store, payload)
    except Exception as exc:  # a hook never fails Claude Code
        _debug(f"error: {exc!r}")
        return 0
    return post_status(action, store, payload)


def post_status(status: str, store: ConfigStore, payload: dict) -> int:
    import httpx  # here, not at the top: `hook inbox` runs on every tool call and needs no HTTP

    try:
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
