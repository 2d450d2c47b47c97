"""`claudemesh kick|disconnect|ban|unban|bans` (owners and admins, client.md "Peer administration") and
`grant|revoke|block|grants` (this member's grants: what each sender may do to it, kept and enforced by the
broker on every delivery path)."""

from __future__ import annotations

from peer.cli_context import Context, Parser, run_on_mesh
from peer.describe import local_time
from peer.moderation import capabilities, granted
from peer.output import INVALID_ARGS, CliError
from peer.reminders import parse_duration
from peer.targets import TargetError
from protocol.vocabulary import GRANTS


async def _key_of(client, who: str) -> str:
    """The member key `who` names (a name, a key or a prefix); what cannot be placed goes to the broker as is."""
    try:
        target = await client.resolve(who)
    except TargetError as exc:
        if exc.kind == "ambiguous":
            raise
        return who
    if target.multicast:
        raise CliError(f"{who!r} names several peers: give one member", INVALID_ARGS)
    return target.seal_to or target.spec


# --- kick, disconnect, ban ----------------------------------------------------------------------------------


def _stale_ms(text: str) -> int:
    duration = parse_duration(text)
    if duration is None:
        raise CliError(f"--stale takes a duration like 30m, 1h or 300s (got {text!r})", INVALID_ARGS)
    return int(duration.total_seconds() * 1000)


def cmd_kick(ctx: Context) -> int:
    args = ctx.args
    disconnect = args.command == "disconnect"
    if sum(bool(x) for x in (args.peer, args.stale, args.all)) != 1:
        raise CliError(f"{args.command} needs one of: <peer>, --stale <duration>, --all", INVALID_ARGS)
    stale = _stale_ms(args.stale) if args.stale else None

    async def act(client):
        target = await _key_of(client, args.peer) if args.peer else None
        return await client.moderation.kick(target=target, stale_ms=stale, everyone=args.all, disconnect=disconnect)

    names = run_on_mesh(ctx, act)
    verb = "disconnected" if disconnect else "kicked"
    ctx.out.result({verb: names}, f"{verb} {len(names)}: {', '.join(names)}" if names else f"nobody {verb}")
    return 0


def cmd_ban(ctx: Context) -> int:
    async def act(client):
        return await client.moderation.ban(await _key_of(client, ctx.args.peer))

    name = run_on_mesh(ctx, act)
    ctx.out.result({"banned": name}, f"banned {name}: its sessions are closed and it cannot reconnect")
    return 0


def cmd_unban(ctx: Context) -> int:
    name = run_on_mesh(ctx, lambda c: c.moderation.unban(ctx.args.peer))  # banned members are not on the roster
    ctx.out.result({"unbanned": name}, f"unbanned {name}")
    return 0


def cmd_bans(ctx: Context) -> int:
    bans = run_on_mesh(ctx, lambda c: c.moderation.bans())
    if ctx.out.as_json:
        ctx.out.json({"bans": bans})
        return 0
    if not bans:
        ctx.out.line("no banned members")
    for ban in bans:
        ctx.out.line(f"{ban.get('name')}  {str(ban.get('pubkey'))[:16]}…  since {local_time(ban.get('revokedAt'))}")
    return 0


# --- grants -------------------------------------------------------------------------------------------------


def _caps(words: list[str]) -> list[str]:
    try:
        return capabilities(words)
    except ValueError as exc:
        raise CliError(str(exc), INVALID_ARGS) from None


def cmd_grant(ctx: Context) -> int:
    args = ctx.args
    verb = args.command
    caps = [] if verb == "block" else _caps(args.caps)
    if verb != "block" and not caps:
        raise CliError(f"{verb} needs capabilities: {', '.join(GRANTS)} or all", INVALID_ARGS)

    async def act(client):
        key = await _key_of(client, args.peer)
        current = (await client.moderation.grants()).get(key)
        now = granted(current)
        if verb == "grant":
            entry = now + [c for c in caps if c not in now]
        elif verb == "revoke":
            entry = [c for c in now if c not in caps]
        else:
            entry = []
        grants = await client.moderation.set_grants({key: entry})
        return key, grants.get(key, [])

    key, entry = run_on_mesh(ctx, act)
    ctx.out.result({"peer": args.peer, "pubkey": key, "grants": entry},
                   f"{args.peer} may now: {', '.join(entry)}" if entry else f"{args.peer} is blocked")
    return 0


def cmd_grants(ctx: Context) -> int:
    mesh = ctx.mesh(ctx.config())
    grants = run_on_mesh(ctx, lambda c: c.moderation.grants())
    if ctx.out.as_json:
        ctx.out.json({"schema_version": "1.0", "mesh": mesh.slug, "grants": grants})
        return 0
    if not grants:
        ctx.out.line(f"no grants set: every peer may {', '.join(granted(None))}")
    for key, caps in grants.items():
        ctx.out.line(f"{key[:16]}…  {', '.join(caps) if caps else 'blocked'}")
    return 0


# --- parser -------------------------------------------------------------------------------------------------


def add_moderation_commands(add, common: Parser) -> None:
    for verb, text in (("kick", "close a peer's sessions for good (owner/admin): <peer>, --stale 30m or --all"),
                       ("disconnect", "close a peer's sessions; they may reconnect (owner/admin)")):
        p = add(verb, cmd_kick, text)
        p.add_argument("peer", nargs="?")
        p.add_argument("--stale", help="sessions that sent nothing for this long (30m, 1h, 300s)")
        p.add_argument("--all", action="store_true", help="every other session of the mesh")
    add("ban", cmd_ban, "remove a member and refuse its reconnects (owner/admin)").add_argument("peer")
    add("unban", cmd_unban, "lift a ban (name or full pubkey; owner/admin)").add_argument("peer")
    add("bans", cmd_bans, "banned members (owner/admin)")
    p = add("grant", cmd_grant, "let a peer do more to you: dm, broadcast, state-read, state-write, file-read, all")
    p.add_argument("peer")
    p.add_argument("caps", nargs="+")
    p = add("revoke", cmd_grant, "take capabilities back from a peer (or all)")
    p.add_argument("peer")
    p.add_argument("caps", nargs="+")
    add("block", cmd_grant, "refuse everything from a peer").add_argument("peer")
    add("grants", cmd_grants, "what each peer may do to you")
