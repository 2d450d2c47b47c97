"""`claudemesh doctor`: every check prints ✓/✗ with a fix, exit 1 when any failed (client.md §1.4)."""

from __future__ import annotations

import asyncio
import shutil
import sys

from peer.claude_setup import ClaudePaths, SetupError, hooks_registered, is_registered
from peer.client import MeshClient, cli_session_id
from peer.config import Config, ConfigError, session_name
from peer.connection_terms import CLI_CHANNEL, ConnectionUnavailable, HelloOptions

HELLO_TIMEOUT = 8.0


def run_doctor(ctx, paths: ClaudePaths) -> int:
    checks: list[dict] = []

    def check(name: str, ok: bool, detail: str = "", fix: str = "") -> None:
        checks.append({"name": name, "ok": ok, "detail": detail, "fix": "" if ok else fix})

    check("python", sys.version_info >= (3, 11), sys.version.split()[0], "use Python 3.11 or newer")
    check("claude on PATH", shutil.which("claude") is not None, shutil.which("claude") or "not found",
          "install Claude Code (https://docs.anthropic.com/claude-code)")
    try:
        check("MCP server registered", is_registered(paths), str(paths.claude_json), "run `claudemesh install`")
        check("status hooks", hooks_registered(paths), str(paths.settings), "run `claudemesh install`")
    except SetupError as exc:
        check("Claude Code files", False, str(exc), "fix the file by hand")
    config = None
    try:
        config = ctx.store.load()
        problems = ctx.store.permission_problems()
        check("config permissions", not problems, "; ".join(problems) or str(ctx.store.path),
              f"chmod 700 {ctx.store.directory} && chmod 600 {ctx.store.path}")
    except ConfigError as exc:
        check("config readable", False, str(exc), f"fix or remove {ctx.store.path}")
    meshes = config.meshes if config else []
    if config is not None and not meshes:
        check("meshes joined", False, "none", "run `claudemesh join <invite link>`")
    for mesh in meshes:
        problems = mesh.key_problems()
        check(f"{mesh.slug}: keys", not problems, "; ".join(problems) or f"pubkey {mesh.pubkey[:16]}…",
              "re-join the mesh with a fresh invite")
        if problems:
            continue
        ok, detail = asyncio.run(_hello(mesh, ctx.shared_inbox()))
        check(f"{mesh.slug}: broker reachable, hello accepted", ok, detail,
              "check the broker URL, your network, and that you are still a member")

    failed = [c for c in checks if not c["ok"]]
    if ctx.out.as_json:
        ctx.out.json({"ok": not failed, "checks": checks})
        return 1 if failed else 0
    print("  claudemesh doctor")
    print("  " + "─" * 60)
    for item in checks:
        mark = "✓" if item["ok"] else "✗"
        print(f"  {mark} {item['name']}" + (f" ({item['detail']})" if item["detail"] else ""))
        if item["fix"]:
            print(f"     → {item['fix']}")
    print()
    print("  All checks passed." if not failed else f"  {len(failed)} check(s) failed.")
    return 1 if failed else 0


async def _hello(mesh, inbox) -> tuple[bool, str]:
    options = HelloOptions(display_name=session_name(Config(), mesh), session_id=cli_session_id(), channel=CLI_CHANNEL)
    client = MeshClient(mesh, options, inbox=inbox)  # queued messages handed to this probe are kept
    client.start()
    loop = asyncio.get_running_loop()
    started = loop.time()
    try:
        await client.connection.wait_open(HELLO_TIMEOUT)
        return True, f"{int((loop.time() - started) * 1000)}ms → {mesh.broker_url}"
    except ConnectionUnavailable as exc:
        return False, str(exc)
    finally:
        await client.close()
