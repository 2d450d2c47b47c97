"""What the acceptance suites add: their hello builder, an authenticated socket, the clear-error oracle and the
results file their figures go to."""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path
from typing import Any

from tests.support.identities import Identity, hello_for
from tests.support.sockets import Socket, open_socket

ROOT = Path(__file__).resolve().parents[2]
# Test outputs go to an ignored folder, never into tracked files; docs/ keeps the copy a release records.
OUTPUT = Path(os.environ.get("CLAUDEMESH_TEST_OUTPUT", ROOT / "var" / "test-results"))
RESULTS = OUTPUT / "reliability-results.json"
SNAKE = re.compile(r"^[a-z][a-z0-9_]*$")


def record_results(suite: str, part: str, figures: dict[str, Any]) -> None:
    """Merge one test's figures from this run into var/test-results/reliability-results.json (the figures
    docs/reliability.md quotes are copied from there into docs/reliability-results.json)."""
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    data = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    data.setdefault(suite, {})[part] = {
        **figures,
        "recordedAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "database": "postgres" if os.environ.get("DATABASE_URL", "").startswith("postgres") else "sqlite",
        "channelLayer": "redis" if os.environ.get("REDIS_URL") else "in-memory",
    }
    RESULTS.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")


def hello_frame(identity: Identity, *, mesh_id: str | None = None, timestamp: int | None = None, **overrides) -> dict:
    """A hello signed over `mesh_id` and `timestamp` (a hostile hello signs what it sends)."""
    return hello_for(identity, mesh_id=mesh_id, signed_at=timestamp, **{"cwd": "/tmp/acceptance", **overrides})


async def authenticated(identity: Identity, **overrides) -> Socket:
    sock = await open_socket()
    await sock.send(hello_frame(identity, **overrides))
    await sock.expect("hello_ack")
    return sock


def assert_clear_error(frame: dict[str, Any], request: dict[str, Any] | None = None) -> None:
    """protocol.md §1.4: code (snake_case) and message strings; `_reqId` echoed iff the request had a string one."""
    assert frame["type"] == "error", frame
    assert isinstance(frame.get("code"), str) and SNAKE.fullmatch(frame["code"]), frame
    assert isinstance(frame.get("message"), str) and frame["message"], frame
    if request is not None:
        req_id = request.get("_reqId")
        if isinstance(req_id, str):
            assert frame.get("_reqId") == req_id, (frame, request)
        else:
            assert "_reqId" not in frame, (frame, request)
