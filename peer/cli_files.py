"""`claudemesh file share|list|get|rm|status|grant` (client.md §1.5 `file`, protocol.md §5.17): files end-to-end
encrypted by the client library (peer/files.py); a progress bar on the terminal for large ones."""

from __future__ import annotations

import sys
from typing import Any

from peer.cli_context import Context, Parser, run_on_mesh, split_list
from peer.describe import local_time
from peer.files import FileError, Files, human_size
from peer.output import INVALID_ARGS, NETWORK_ERROR, NOT_FOUND, PERMISSION_DENIED, CliError

BAR_FROM_BYTES = 1024 * 1024
EXIT_FOR = {"not_found": NOT_FOUND, "forbidden": PERMISSION_DENIED, "network": NETWORK_ERROR, "invalid": INVALID_ARGS}


class ProgressBar:
    """On stderr, for transfers of at least 1 MiB and only on a terminal (JSON output stays clean)."""

    def __init__(self, label: str):
        self.label = label
        self.shown = -1

    def __call__(self, done: int, total: int) -> None:
        if total < BAR_FROM_BYTES or not sys.stderr.isatty():
            return
        percent = min(100, done * 100 // max(total, 1))
        if percent != self.shown:
            self.shown = percent
            filled = percent // 4
            sys.stderr.write(f"\r{self.label} [{'#' * filled}{'.' * (25 - filled)}] {percent:3d}% of {human_size(total)}")
            if percent == 100:
                sys.stderr.write("\n")
            sys.stderr.flush()


def _run(ctx: Context, act) -> Any:
    async def with_files(client):
        try:
            return await act(Files(client))
        except FileError as exc:
            raise CliError(f"{exc.code}: {exc}", EXIT_FOR.get(exc.code, 1), code=exc.code) from None

    return run_on_mesh(ctx, with_files)


def cmd_file(ctx: Context) -> int:
    return VERBS[ctx.args.action](ctx)


def _share(ctx: Context) -> int:
    args = ctx.args
    if not args.to:
        raise CliError("file share needs --to <member|session|@group|*>", INVALID_ARGS)
    shared = _run(ctx, lambda files: files.share(args.path, args.to, persistent=not args.ephemeral,
                                                 tags=split_list(args.tags) if args.tags else None,
                                                 progress=ProgressBar(f"sharing {args.path}")))
    ctx.out.result(shared, f"shared {shared['name']} ({human_size(shared['size'])}, encrypted) with {shared['label']}: "
                           f"file id {shared['fileId']}")
    return 0


def _list(ctx: Context) -> int:
    files = _run(ctx, lambda f: f.list(query=ctx.args.query, uploader=ctx.args.uploader))
    if ctx.out.as_json:
        ctx.out.json({"files": files})
        return 0
    if not files:
        ctx.out.line("no files shared with you")
    for entry in files:
        keep = "" if entry.get("persistent", True) else f", until {local_time(entry.get('expiresAt'))}"
        ctx.out.line(f"{entry.get('id')}  {entry.get('name')}  {human_size(int(entry.get('size') or 0))}  "
                     f"from {entry.get('uploadedBy')}, {local_time(entry.get('uploadedAt'))}{keep}")
    return 0


def _get(ctx: Context) -> int:
    got = _run(ctx, lambda f: f.fetch(ctx.args.id, out=ctx.args.output, progress=ProgressBar(f"fetching {ctx.args.id}")))
    ctx.out.result(got, f"saved {got['path']} ({human_size(got['size'])}, from {got.get('uploadedBy')})")
    return 0


def _rm(ctx: Context) -> int:
    _run(ctx, lambda f: f.delete(ctx.args.id))
    ctx.out.result({"deleted": ctx.args.id}, f"deleted {ctx.args.id}")
    return 0


def _status(ctx: Context) -> int:
    accesses = _run(ctx, lambda f: f.accesses(ctx.args.id))
    if ctx.out.as_json:
        ctx.out.json({"fileId": ctx.args.id, "accesses": accesses})
        return 0
    if not accesses:
        ctx.out.line("nobody has fetched it yet")
    for access in accesses:
        ctx.out.line(f"{access.get('peerName')}  {local_time(access.get('accessedAt'))}")
    return 0


def _grant(ctx: Context) -> int:
    if not ctx.args.to:
        raise CliError("file grant needs <id> --to <member|session|@group|*>", INVALID_ARGS)
    granted = _run(ctx, lambda f: f.grant(ctx.args.id, ctx.args.to))
    ctx.out.result(granted, f"{ctx.args.to} can now fetch {ctx.args.id}")
    return 0


VERBS = {"share": _share, "list": _list, "get": _get, "rm": _rm, "status": _status, "grant": _grant}


def add_file_commands(add, common: Parser) -> None:
    p = add("file", None, "share files end-to-end encrypted: share, list, get, rm, status, grant")
    verbs = p.add_subparsers(dest="action", metavar="<share|list|get|rm|status|grant>", parser_class=Parser, required=True)
    q = verbs.add_parser("share", parents=[common])
    q.add_argument("path")
    q.add_argument("--to", help="member or session name, pubkey, @group or *")
    q.add_argument("--ephemeral", action="store_true", help="deleted after FILES_EPHEMERAL_HOURS (default 24 h)")
    q.add_argument("--tags", help="comma list")
    q = verbs.add_parser("list", parents=[common])
    q.add_argument("--query", help="part of the name")
    q.add_argument("--from", dest="uploader", help="who shared it (name)")
    q = verbs.add_parser("get", parents=[common])
    q.add_argument("id")
    q.add_argument("-o", "--output", help="a file path or a directory (default: the current directory)")
    for verb in ("rm", "status"):
        verbs.add_parser(verb, parents=[common]).add_argument("id")
    q = verbs.add_parser("grant", parents=[common])
    q.add_argument("id")
    q.add_argument("--to")
    for verb in verbs.choices.values():
        verb.set_defaults(handler=cmd_file)
