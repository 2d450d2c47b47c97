"""`claudemesh join`, `rename`, `list`, `leave`, `whoami`: this machine's identities in its meshes."""

from __future__ import annotations

import sys

from peer.cli_context import Context, run_async, with_client
from peer.config import derived_member_name, session_name
from peer.enroll import EnrollError, join
from peer.output import FAILURE, INVALID_ARGS, NETWORK_ERROR, NOT_FOUND, CliError


def cmd_join(ctx: Context) -> int:
    config = ctx.config()
    link = ctx.args.link
    if "://" not in link:
        known = next((m for m in config.meshes if link in (m.slug, m.name)), None)
        if known is not None:
            ctx.out.result({"ok": True, "slug": known.slug, "alreadyJoined": True},
                f'Already in "{known.slug}"'
            )
            return 0
    name = member_name_for_join(ctx, config)
    try:
        result = join(link, config=config, display_name=name)
    except EnrollError as exc:
        code = {"invalid": INVALID_ARGS, "not_found": NOT_FOUND, "network": NETWORK_ERROR}.get(exc.kind, FAILURE)
        raise CliError(str(exc), code, hint=exc.hint) from exc
    if not config.display_name:
        config.settings["displayName"] = name  # the default name for the next mesh this machine joins
    ctx.save(config)
    entry = result.entry
    if ctx.out.as_json:
        ctx.out.json({"ok": True, "slug": entry.slug, "meshId": entry.mesh_id, "memberId": entry.member_id,
                      "memberName": entry.member_name, "pubkey": entry.pubkey, "brokerUrl": entry.broker_url,
                      "alreadyMember": result.already_member, "linked": result.linked, "role": result.role,
                      "retiredMemberId": result.retired_member_id,
                      "inviteVersion": result.invite_version, "config": str(ctx.store.path)})
        return 0
    ctx.out.ok(f'Joined "{entry.slug}" as {entry.member_name}' + (" (already a member)" if result.already_member else ""))
    if result.linked:
        ctx.out.line(f"linked to your dashboard account ({result.role}): one member, whatever machine you use")
    if result.retired_member_id:
        ctx.out.line(f"retired this machine's earlier identity in the mesh (member {result.retired_member_id[:8]})")
    ctx.out.line(f"member id  {entry.member_id}")
    ctx.out.line(f"pubkey     {entry.pubkey[:16]}…")
    ctx.out.line(f"broker     {entry.broker_url}")
    ctx.out.line(f"config     {ctx.store.path}")
    ctx.out.line("Restart Claude Code to pick up the new mesh.")
    return 0


def member_name_for_join(ctx: Context, config) -> str:
    """The lasting member name: --name, else this machine's default, else asked for (on a terminal) with a
    derived suggestion (git user.name, else $USER@host)."""
    if ctx.args.name:
        return ctx.args.name.strip()
    if config.display_name:
        return config.display_name
    suggestion = derived_member_name()
    if sys.stdin.isatty() and not ctx.out.as_json:
        try:
            typed = input(f"  Your name in this mesh (how teammates address you) [{suggestion}]: ").strip()
        except EOFError:
            typed = ""
        return typed or suggestion
    return suggestion


def cmd_rename(ctx: Context) -> int:
    config = ctx.config()
    mesh = ctx.mesh(config)
    name = " ".join(ctx.args.name).strip()
    if not name:
        raise CliError("give the new name", INVALID_ARGS)
    reply = run_async(with_client(ctx, mesh, config, lambda c: c.rename_member(name)))
    mesh.member_name = str(reply.get("displayName") or name)
    ctx.save(config)
    ctx.out.result({"ok": True, "memberId": reply.get("memberId"), "memberName": mesh.member_name},
                   f"you are now {mesh.member_name} on {mesh.slug} (peers address you by this name)")
    return 0


def cmd_list(ctx: Context) -> int:
    config = ctx.config()
    if ctx.out.as_json:
        ctx.out.json([{"slug": m.slug, "name": m.name, "meshId": m.mesh_id, "memberId": m.member_id,
                       "pubkey": m.pubkey, "brokerUrl": m.broker_url, "joinedAt": m.joined_at} for m in config.meshes])
        return 0
    if not config.meshes:
        ctx.out.line("No meshes joined. Run `claudemesh join <invite link>`.")
        return 0
    ctx.out.section(f"meshes ({len(config.meshes)})")
    for mesh in config.meshes:
        ctx.out.line(f"● {mesh.slug}  {mesh.broker_url}  joined {mesh.joined_at or '?'}")
    return 0


def cmd_leave(ctx: Context) -> int:
    config = ctx.config()
    removed = config.remove(ctx.args.slug)
    if removed is None:
        joined = ", ".join(m.slug for m in config.meshes) or "none"
        raise CliError(f'Mesh "{ctx.args.slug}" not found. Joined: {joined}', NOT_FOUND)
    ctx.save(config)
    ctx.out.result({"ok": True, "left": removed.slug},
        f'Left "{removed.slug}" (its key was deleted from {ctx.store.path})'
    )
    return 0


def cmd_whoami(ctx: Context) -> int:
    config = ctx.config()
    meshes = ctx.meshes(config, all_by_default=True)
    records = [{"slug": m.slug, "meshId": m.mesh_id, "memberId": m.member_id, "pubkey": m.pubkey,
                "brokerUrl": m.broker_url, "memberName": m.member_name, "displayName": session_name(config, m)}
               for m in meshes]
    if ctx.out.as_json:
        ctx.out.json(records[0] if getattr(ctx.args, "mesh", None) else records)
        return 0
    ctx.out.section("whoami")
    ctx.out.line(f"config  {ctx.store.path}")
    for record in records:
        ctx.out.line(f"{record['slug']}  {record['memberName'] or '(name not recorded: `claudemesh rename`)'}"
                     f"  member {record['memberId']}  pubkey {record['pubkey'][:16]}…  session name {record['displayName']}")
    return 0
