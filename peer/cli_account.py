"""`claudemesh login | logout | new | delete`, and the signed-in halves of `whoami`, `list`, `invite` and
`rename <slug> <name>`: the account's verbs (protocol.md §6.6–6.7, client.md §1.4)."""

from __future__ import annotations

import sys
import time
import webbrowser
from datetime import UTC, datetime

from peer.account import Account, AccountError, Auth, AuthStore, call, machine, server_origin
from peer.cli_context import Context
from peer.config import Config, ConfigError, MeshEntry
from peer.output import AUTH_FAILED, INVALID_ARGS, NETWORK_ERROR, NOT_FOUND, PERMISSION_DENIED, CliError
from protocol.crypto import SigningKeypair

POLL_SECONDS = 1.5


def _store() -> AuthStore:
    return AuthStore()


def signed_in() -> Auth | None:
    try:
        return _store().load()
    except ConfigError:
        return None


def require_account(ctx: Context) -> Account:
    auth = signed_in()
    if auth is None:
        raise CliError("Not signed in", AUTH_FAILED, hint="run `claudemesh login` first")
    return Account(auth)


def account_error(exc: AccountError) -> CliError:
    if exc.status == 401:
        return CliError(f"your sign-in is no longer valid: {exc}", AUTH_FAILED, hint="run `claudemesh login` again")
    if exc.status == 403:
        return CliError(str(exc), PERMISSION_DENIED, code=exc.code or None)
    if exc.status == 404:
        return CliError(str(exc), NOT_FOUND, code=exc.code or None)
    if exc.status in (400, 422):
        return CliError(str(exc), INVALID_ARGS, code=exc.code or None)
    return CliError(str(exc), NETWORK_ERROR)


# --- login / logout ---------------------------------------------------------------------------------------


def cmd_login(ctx: Context) -> int:
    try:
        server = server_origin(getattr(ctx.args, "server", None), ctx.config())
    except (AccountError, ConfigError) as exc:
        raise CliError(str(exc), INVALID_ARGS) from None
    token = getattr(ctx.args, "token", None)
    auth = _paste(server, token) if token else _device_code(ctx, server)
    _store().save(auth)
    ctx.out.result({"ok": True, "user": auth.user, "server": server, "token_source": auth.token_source},
                   f"✔ signed in as {auth.name} on {server}")
    return 0


def _device_code(ctx: Context, server: str) -> Auth:
    try:
        start = call("POST", f"{server}/cli/device-code", body=machine())
    except AccountError as exc:
        raise account_error(exc) from None
    url = f"{start['verification_url']}?session={start['session_id']}"
    print(f"\n  Your code: {start['user_code']}\n\n  Open this page, check the code and approve:\n  {url}\n",
          file=sys.stderr, flush=True)
    if not getattr(ctx.args, "no_browser", False):
        try:
            webbrowser.open(url)
        except Exception:  # no browser here: the printed link is enough
            pass
    interval = float(start.get("interval") or POLL_SECONDS)
    deadline = time.monotonic() + _seconds_until(start.get("expires_at"))
    while time.monotonic() < deadline:
        try:
            answer = call("GET", f"{server}/cli/device-code/{start['device_code']}")
        except AccountError:
            answer = {"status": "pending"}  # a blip while polling is not a failure
        status = answer.get("status")
        if status == "approved":
            return Auth(session_token=answer["session_token"], user=answer.get("user") or {}, server=server)
        if status in ("denied", "expired", "consumed"):
            raise CliError(f"sign-in {status}", AUTH_FAILED, hint="run `claudemesh login` again")
        time.sleep(interval)
    raise CliError("sign-in expired before it was approved", AUTH_FAILED, hint="run `claudemesh login` again")


def _seconds_until(iso: object) -> float:
    try:
        moment = datetime.fromisoformat(str(iso).replace("Z", "+00:00"))
        return max(1.0, (moment - datetime.now(UTC)).total_seconds())
    except ValueError:
        return 300.0


def _paste(server: str, token: str) -> Auth:
    """A token from the `/token` page: checked with the server before it is stored."""
    try:
        user = call("GET", f"{server}/api/my/profile", token=token.strip())
    except AccountError as exc:
        raise account_error(exc) from None
    return Auth(session_token=token.strip(), user=user, server=server, token_source="manual")


def cmd_logout(ctx: Context) -> int:
    auth = signed_in()
    if auth is None:
        raise CliError("Logout failed: Not signed in.", AUTH_FAILED)
    try:
        revoked = Account(auth).revoke()
    except AccountError:
        revoked = False
    _store().delete()
    ctx.out.result({"ok": True, "revoked": revoked},
                   ("✔ revoked this terminal's session on " + auth.server) if revoked else
                   f"! could not revoke on {auth.server}: revoke it under Terminals on the dashboard")
    if not ctx.out.as_json:
        ctx.out.line("✔ removed local credentials")
    return 0


def account_summary() -> dict | None:
    """For `whoami`: who this terminal is signed in as, checked with the server (None when signed out)."""
    auth = signed_in()
    if auth is None:
        return None
    try:
        user = Account(auth).profile()
    except AccountError as exc:
        if exc.status == 401:
            _store().delete()
            return None
        return {"user": auth.user, "server": auth.server, "token_source": auth.token_source, "checked": False}
    return {"user": user, "server": auth.server, "token_source": auth.token_source, "checked": True}


# --- meshes ----------------------------------------------------------------------------------------------


def cmd_new(ctx: Context) -> int:
    name = " ".join(ctx.args.name).strip()
    if not name:
        raise CliError("give the mesh a name", INVALID_ARGS)
    account = require_account(ctx)
    keypair = SigningKeypair.generate()
    try:
        created = account.create_mesh(name, keypair.public_hex)
    except AccountError as exc:
        raise account_error(exc) from None
    config = ctx.config()
    entry = MeshEntry(
        mesh_id=created["id"], member_id=created["member_id"], slug=created["slug"], name=created["name"],
        pubkey=keypair.public_hex, secret_key=keypair.secret_hex,
        broker_url=created.get("broker_url") or account.auth.server.replace("http", "ws", 1) + "/ws",
        joined_at=datetime.now(UTC).isoformat(timespec="seconds"), member_name=account.auth.name,
    )
    config.upsert(entry)
    ctx.save(config)
    ctx.out.result({"schema_version": "1.0", "slug": entry.slug, "id": entry.mesh_id, "memberId": entry.member_id},
                   f"✔ created {entry.slug}: you are its owner, joined here (invite people: claudemesh invite --mesh {entry.slug})")
    return 0


def cmd_delete(ctx: Context) -> int:
    """Archive a mesh everywhere (owner only), after typing its slug; then forget it here."""
    account = require_account(ctx)
    slug = ctx.args.slug
    confirm = getattr(ctx.args, "confirm", None)
    if confirm is None:
        if not sys.stdin.isatty():
            raise CliError(f"type the mesh's slug to confirm: --confirm {slug}", INVALID_ARGS)
        confirm = input(f"  This archives {slug} for every member. Type its slug to confirm: ").strip()
    if confirm != slug:
        raise CliError("the confirmation does not match the slug; nothing was deleted", INVALID_ARGS)
    try:
        answer = account.delete_mesh(slug)
    except AccountError as exc:
        raise account_error(exc) from None
    config = ctx.config()
    removed = config.find_by_id(answer.get("id", "")) or config.find(slug)
    if removed is not None:
        config.remove(removed.slug)
        ctx.save(config)
    ctx.out.result({"ok": True, "deleted": answer.get("deleted"), "id": answer.get("id"),
                    "removedLocally": removed is not None},
                   f"✔ deleted {slug} (archived: members can no longer connect)")
    return 0


def rename_mesh(ctx: Context, slug: str, name: str) -> int:
    account = require_account(ctx)
    try:
        answer = account.rename_mesh(slug, name)
    except AccountError as exc:
        raise account_error(exc) from None
    config = ctx.config()
    entry = config.find_by_id(answer["id"])
    if entry is not None:
        entry.name = answer["name"]
        ctx.save(config)
    ctx.out.result({"ok": True, "slug": answer["slug"], "name": answer["name"]},
                   f"✔ {answer['slug']} is now called \"{answer['name']}\" (the slug stays)")
    return 0


def server_meshes() -> list[dict] | None:
    """The account's meshes for `list`, or None when signed out or unreachable."""
    auth = signed_in()
    if auth is None:
        return None
    try:
        return Account(auth).meshes()
    except AccountError:
        return None


def mesh_slugs_on_server(config: Config) -> set[str]:
    return {m["slug"] for m in server_meshes() or []} | {m.slug for m in config.meshes}


def invite_by_account(ctx: Context, slug: str) -> dict:
    account = require_account(ctx)
    try:
        return account.invite(slug, role=ctx.args.role, max_uses=ctx.args.max_uses,
                              expires_days=ctx.args.expires_days, email=ctx.args.email)
    except AccountError as exc:
        raise account_error(exc) from None
