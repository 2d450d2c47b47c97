"""`claudemesh` command line: argument parsing and output only; the work is done by the client library."""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path

from peer import __version__
from peer.claude_setup import ClaudePaths, SetupError, install, uninstall
from peer.cli_account import cmd_delete, cmd_login, cmd_logout, cmd_new
from peer.cli_admin import cmd_apikey_create, cmd_apikey_list, cmd_apikey_revoke, cmd_invite, cmd_webhook
from peer.cli_context import Context, Parser, config_groups, run_async, with_client
from peer.cli_coordination import add_coordination_commands
from peer.cli_files import add_file_commands
from peer.cli_identity import cmd_join, cmd_leave, cmd_list, cmd_rename, cmd_whoami
from peer.cli_inbox import cmd_inbox, cmd_watch
from peer.cli_moderation import add_moderation_commands
from peer.cli_topics import cmd_topic
from peer.connection_terms import CLI_CHANNEL
from peer.describe import describe_member, describe_message_status, describe_send, nobody_reached
from peer.hook import run_hook
from peer.output import (
    FAILURE,
    INTERNAL_ERROR,
    INTERRUPTED_BY_SIGINT,
    INVALID_ARGS,
    NOT_FOUND,
    CliError,
    Output,
)
from protocol.vocabulary import PRIORITIES, STATUSES

# --- commands: local --------------------------------------------------------------------------------------


def claude_paths() -> ClaudePaths:
    return ClaudePaths(home=Path.home(), claude_bin=shutil.which("claude"))


def cmd_install(ctx: Context) -> int:
    try:
        report = install(claude_paths(), ctx.store.directory, hooks=not ctx.args.no_hooks, skill=not ctx.args.no_skill)
    except (SetupError, OSError) as exc:
        raise CliError(f"install failed: {exc}", FAILURE) from exc
    if ctx.out.as_json:
        ctx.out.json({"ok": True, "changes": report.changes, "backups": report.backups, "warnings": report.warnings})
        return 0
    for change in report.changes:
        ctx.out.ok(change)
    for warning in report.warnings:
        ctx.out.warn(warning)
    ctx.out.line("RESTART CLAUDE CODE to load the claudemesh MCP server.")
    if not ctx.config().meshes:
        ctx.out.line("→ next: claudemesh join <invite link>")
    return 0


def cmd_uninstall(ctx: Context) -> int:
    try:
        report = uninstall(claude_paths(), ctx.store.directory)
    except (SetupError, OSError) as exc:
        raise CliError(f"uninstall failed: {exc}", FAILURE) from exc
    if ctx.out.as_json:
        ctx.out.json({"ok": True, "changes": report.changes})
        return 0
    for change in report.changes:
        ctx.out.ok(change)
    return 0


def cmd_hook(ctx: Context) -> int:
    return run_hook(ctx.args.status, ctx.store)


# --- commands: broker -------------------------------------------------------------------------------------


def cmd_peers(ctx: Context) -> int:
    config = ctx.config()
    meshes = ctx.meshes(config, all_by_default=True)
    results, failures = [], []
    for mesh in meshes:
        try:
            peers = run_async(with_client(ctx, mesh, config, lambda c: c.peers()))
        except CliError as exc:
            if len(meshes) == 1:
                raise
            failures.append(exc)  # one unreachable mesh must not hide the others
            print(f"  ✘ {mesh.slug}: {exc.message}", file=sys.stderr)
            continue
        results.append({"mesh": mesh.slug, "peers": peers})
    if not results:
        raise failures[0]
    if ctx.out.as_json:
        ctx.out.json(results[0]["peers"] if len(results) == 1 else results)
        return 0
    for result in results:
        ctx.out.section(f"peers on {result['mesh']} ({len(result['peers'])})")
        if not result["peers"]:
            ctx.out.line("(no peers connected)")
        for peer in result["peers"]:
            groups = ", ".join(f"@{g.get('name')}" + (f":{g['role']}" if g.get("role") else "")
                               for g in peer.get("groups") or [] if isinstance(g, dict))
            summary = f"  — {peer['summary']}" if peer.get("summary") else ""
            ctx.out.line(f"● {peer.get('displayName')} [{peer.get('status', '?')}]"
                         + (f" [{groups}]" if groups else "") + f" · {str(peer.get('pubkey'))[:16]}…{summary}")
    return 0


def cmd_send(ctx: Context) -> int:
    config = ctx.config()
    mesh = ctx.mesh(config)
    message = " ".join(ctx.args.message).strip()
    if not message:
        raise CliError("message is empty", INVALID_ARGS)
    try:
        result = run_async(with_client(ctx, mesh, config, lambda c: c.send_text(ctx.args.to, message,
                                                                                  priority=ctx.args.priority)))
    except CliError as exc:
        if exc.code == "rejected" or exc.message.startswith("broker refused: rejected"):
            exc.message = "send failed: " + exc.message.removeprefix("broker refused: rejected: ")
        raise
    if ctx.out.as_json:
        ctx.out.json({"ok": True, **result})
    elif nobody_reached(result):
        ctx.out.warn(describe_send(result))
    else:
        ctx.out.ok(describe_send(result))
    return 0


def cmd_members(ctx: Context) -> int:
    config = ctx.config()
    mesh = ctx.mesh(config)
    members = run_async(with_client(ctx, mesh, config, lambda c: c.members()))
    if ctx.out.as_json:
        ctx.out.json({"mesh": mesh.slug, "members": members})
        return 0
    online = sum(1 for m in members if m.get("online"))
    ctx.out.section(f"members of {mesh.slug} ({len(members)}, {online} online)")
    for member in members:
        ctx.out.line(describe_member(member, own_member_id=mesh.member_id))
    return 0


def cmd_status(ctx: Context) -> int:
    config = ctx.config()
    mesh = ctx.mesh(config)
    if ctx.args.action == "set":
        if ctx.args.value not in STATUSES:
            raise CliError(f"status must be one of {', '.join(STATUSES)}", INVALID_ARGS)
        run_async(with_client(ctx, mesh, config, lambda c: c.set_status(ctx.args.value)))
        ctx.out.result({"status": ctx.args.value},
            f"status set to {ctx.args.value} for this short connection only — "
            "your Claude Code session's status comes from the hooks or the MCP set_status tool"
        )
        return 0
    peers = run_async(with_client(ctx, mesh, config, lambda c: c.peers(include_self=True)))
    mine = [p for p in peers if p.get("memberPubkey") == mesh.pubkey and p.get("channel") != CLI_CHANNEL]
    records = [{"displayName": p.get("displayName"), "status": p.get("status"), "summary": p.get("summary"),
                "sessionId": p.get("sessionId")} for p in mine]
    if ctx.out.as_json:
        ctx.out.json({"mesh": mesh.slug, "sessions": records})
        return 0
    if not records:
        ctx.out.line(f"no live session of yours on {mesh.slug}")
    for record in records:
        ctx.out.line(f"{record['displayName']}: {record['status']}" + (f" — {record['summary']}" if record["summary"] else ""))
    return 0


def cmd_summary(ctx: Context) -> int:
    config = ctx.config()
    mesh = ctx.mesh(config)
    text = " ".join(ctx.args.text).strip()
    if not text:
        raise CliError("summary is empty", INVALID_ARGS)
    run_async(with_client(ctx, mesh, config, lambda c: c.set_summary(text)))
    ctx.out.result({"summary": text}, f'summary set: "{text}"')
    return 0


def cmd_message_status(ctx: Context) -> int:
    config = ctx.config()
    mesh = ctx.mesh(config)
    try:
        result = run_async(with_client(ctx, mesh, config, lambda c: c.message_status(ctx.args.id)))
    except CliError as exc:
        if exc.code == "not_found":
            exc.exit_code = NOT_FOUND
        if exc.code == "ambiguous":
            exc.exit_code = INVALID_ARGS
        raise
    result = {k: v for k, v in result.items() if k not in ("type", "_reqId")}
    if ctx.out.as_json:
        ctx.out.json(result)
        return 0
    for line in describe_message_status(result):
        ctx.out.line(line)
    return 0


def cmd_group(ctx: Context) -> int:
    """Remember a group in the config: the MCP server and `watch` join it on every connect."""
    config = ctx.config()
    name = ctx.args.name.lstrip("@")
    if not name:
        raise CliError("group name is empty", INVALID_ARGS)
    groups = [g for g in config_groups(config) if g["name"] != name]
    if ctx.args.action == "join":
        groups.append({"name": name, **({"role": ctx.args.role} if ctx.args.role else {})})
    config.settings["groups"] = groups
    ctx.save(config)
    ctx.out.result({"group": name, "joined": ctx.args.action == "join"},
        f"{'joined' if ctx.args.action == 'join' else 'left'} @{name} (applies to the MCP server and `watch` on next connect)"
    )
    return 0


def cmd_doctor(ctx: Context) -> int:
    from peer.doctor import run_doctor

    return run_doctor(ctx, claude_paths())


def cmd_mcp(ctx: Context) -> int:
    from peer.mcp_server import serve

    return serve(ctx.store, mesh_slug=getattr(ctx.args, "mesh", None))


# --- parser -----------------------------------------------------------------------------------------------


def build_parser() -> Parser:
    # SUPPRESS: a flag given before the command must survive the subcommand's own defaults.
    common = Parser(add_help=False, argument_default=argparse.SUPPRESS)
    common.add_argument("--json", action="store_true", help="machine-readable output")
    common.add_argument("--mesh", metavar="SLUG", help="which joined mesh to use")
    common.add_argument("-y", "--yes", action="store_true", help="do not ask (accepted for compatibility)")

    parser = Parser(prog="claudemesh", description="Connect Claude Code sessions into a mesh of peers.",
                    parents=[common])
    parser.add_argument("-V", "--version", action="version", version=f"  claudemesh v{__version__}")
    sub = parser.add_subparsers(dest="command", metavar="<command>", parser_class=Parser)

    def add(name: str, handler, help_text: str, aliases: tuple[str, ...] = ()) -> Parser:
        command = sub.add_parser(name, help=help_text, parents=[common], aliases=list(aliases))
        if handler is not None:
            command.set_defaults(handler=handler)
        return command

    p = add("install", cmd_install, "register the MCP server and status hooks in Claude Code")
    p.add_argument("--no-hooks", action="store_true")
    p.add_argument("--no-skill", action="store_true")
    add("uninstall", cmd_uninstall, "remove exactly what install added")
    p = add("join", cmd_join, "join a mesh with an invite link or code", aliases=("add",))
    p.add_argument("link", help="ic://join/<token>, https://host/join/<token>, https://host/i/<code> or a code")
    p.add_argument("--name", help="your lasting member name (asked for, or derived from git / $USER@host, if omitted)")
    p = add("login", cmd_login, "sign this terminal in to your account (approve it in the browser)",
            aliases=("register",))
    p.add_argument("--server", help="the server's URL (default: CLAUDEMESH_BROKER_URL or your meshes' server)")
    p.add_argument("--token", help="a token made on the server's /token page, instead of the browser")
    p.add_argument("--no-browser", action="store_true", help="print the approval link, do not open it")
    add("logout", cmd_logout, "sign this terminal out (revokes its session on the server)")
    p = add("new", cmd_new, "create a mesh you own, joined from this terminal (signed in)", aliases=("create",))
    p.add_argument("name", nargs="+")
    p = add("delete", cmd_delete, "delete (archive) a mesh you own, for everyone (signed in)", aliases=("rm",))
    p.add_argument("slug")
    p.add_argument("--confirm", metavar="SLUG", help="the slug again, instead of typing it")
    p = add("rename", cmd_rename, "`rename <name>`: your member name; `rename <slug> <new name>`: a mesh (signed in)")
    p.add_argument("name", nargs="+")
    add("list", cmd_list, "joined meshes", aliases=("ls",))
    p = add("leave", cmd_leave, "forget a mesh and its key")
    p.add_argument("slug")
    p = add("whoami", cmd_whoami, "the signed-in account and this device's identities")
    p.add_argument("--account", action="store_true", help="with --json: the account document (signed_in, user)")
    add("peers", cmd_peers, "who is online")
    add("members", cmd_members, "every member of the mesh, online or not")
    p = add("send", cmd_send, "send a message (end-to-end encrypted)")
    p.add_argument("to", help="member or session name, unique prefix of a member id or pubkey, @group, @all, * or #topic")
    p.add_argument("message", nargs="+")
    p.add_argument("--priority", choices=PRIORITIES, default="next")
    p = add("inbox", cmd_inbox, "messages received")
    p.add_argument("--all", action="store_true", help="include messages already read")
    p.add_argument("--peek", action="store_true", help="do not mark them read")
    p.add_argument("--local", action="store_true", help="do not connect; only what is stored locally")
    p.add_argument("--wait", type=float, default=1.0, help="seconds to stay connected for queued messages")
    p = add("watch", cmd_watch, "stay connected and print messages as they arrive")
    p.add_argument("--for", dest="seconds", type=float, default=0, help="stop after this many seconds")
    p = add("status", cmd_status, "get or set your presence status")
    p.add_argument("action", choices=("get", "set"))
    p.add_argument("value", nargs="?")
    p = add("summary", cmd_summary, "tell peers what you are working on")
    p.add_argument("text", nargs="+")
    p = add("invite", cmd_invite, "create an invite link (owner/admin)", aliases=("share",))
    p.add_argument("--role", choices=("member", "admin"))
    p.add_argument("--max-uses", "--uses", dest="max_uses", type=int)
    p.add_argument("--expires-days", "--expires", dest="expires_days", type=int, metavar="DAYS")
    p.add_argument("--email", help="send the link to this address (through the signed-in account)")
    p = add("apikey", None, "manage API keys", aliases=("api-key",))
    apikey = p.add_subparsers(dest="action", metavar="<create|list|revoke>", parser_class=Parser, required=True)
    q = apikey.add_parser("create", parents=[common])
    q.set_defaults(handler=cmd_apikey_create)
    q.add_argument("label")
    q.add_argument("--cap", help="comma list of send,read,state_write,admin (default send,read)")
    q.add_argument("--topic", help="comma list of topic names")
    q.add_argument("--expires", help="ISO-8601 expiry")
    q.add_argument("--member", help="the member id the key acts as over REST (default: you, this terminal's key)")
    apikey.add_parser("list", parents=[common]).set_defaults(handler=cmd_apikey_list)
    q = apikey.add_parser("revoke", parents=[common])
    q.set_defaults(handler=cmd_apikey_revoke)
    q.add_argument("id", help="full id or unique prefix")
    p = add("webhook", cmd_webhook, "inbound webhooks CI or monitoring post JSON to (owner/admin)")
    p.add_argument("action", choices=("create", "list", "delete"))
    p.add_argument("name", nargs="?")
    p.add_argument("--signed", action="store_true", help="require an X-Hub-Signature-256 HMAC on every POST")
    p = add("topic", None, "topics: named conversations with an encrypted history")
    topic = p.add_subparsers(dest="action", metavar="<create|list|join|leave|members|history|read>",
                             parser_class=Parser, required=True)
    q = topic.add_parser("create", parents=[common])
    q.add_argument("name")
    q.add_argument("--description")
    q.add_argument("--visibility", choices=("public", "private", "dm"))
    topic.add_parser("list", parents=[common])
    q = topic.add_parser("join", parents=[common])
    q.add_argument("topic", help="#name, name or id")
    q.add_argument("--role", choices=("lead", "member", "observer"))
    for verb in ("leave", "members", "read"):
        topic.add_parser(verb, parents=[common]).add_argument("topic", help="#name, name or id")
    q = topic.add_parser("history", parents=[common])
    q.add_argument("topic", help="#name, name or id")
    q.add_argument("--limit", type=int, default=50, help="1-200 messages (newest)")
    q.add_argument("--before", help="only messages older than this message id")
    for parser_of_verb in topic.choices.values():
        parser_of_verb.set_defaults(handler=cmd_topic)
    add_coordination_commands(add, common)
    add_moderation_commands(add, common)
    add_file_commands(add, common)
    p = add("message-status", cmd_message_status, "delivery status of a sent message", aliases=("msg-status",))
    p.add_argument("id", help="the message id or a unique prefix of it (at least 6 characters, as `send` prints)")
    p = add("group", cmd_group, "join or leave a group (kept in the config)")
    p.add_argument("action", choices=("join", "leave"))
    p.add_argument("name")
    p.add_argument("--role")
    p = add("hook", cmd_hook, "used by Claude Code hooks (idle|working|dnd|inbox|wake)")
    p.add_argument("status", nargs="?", default="")
    add("doctor", cmd_doctor, "check config, keys, broker and Claude Code registration")
    add("mcp", cmd_mcp, "run the MCP server on stdio (started by Claude Code)")
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    as_json = "--json" in argv
    out = Output(as_json)
    try:
        args = build_parser().parse_args(argv)
        if not getattr(args, "handler", None):
            build_parser().print_help()
            return 0
        return args.handler(Context(args))
    except CliError as exc:
        out.error(exc)
        return exc.exit_code
    except KeyboardInterrupt:
        return INTERRUPTED_BY_SIGINT
    except SystemExit as exc:  # --help / --version
        return int(exc.code or 0)
    except Exception as exc:  # a bug: say so plainly instead of a traceback
        if os.environ.get("CLAUDEMESH_DEBUG"):
            raise
        print(f"  Fatal: {type(exc).__name__}: {exc}", file=sys.stderr)
        return INTERNAL_ERROR


if __name__ == "__main__":
    sys.exit(main())
