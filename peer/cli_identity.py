"""`claudemesh join`, `rename`, `list`, `leave`, `whoami`: this machine's identities in its meshes."""

from __future__ import annotations

import sys

from peer.cli_account import account_summary, mesh_slugs_on_server, rename_mesh, server_meshes, signed_in
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
    """`rename <slug> <new name>` renames a mesh (the reference's verb, signed in); `rename <name>` renames you."""
    config = ctx.config()
    words = ctx.args.name
    if len(words) >= 2 and signed_in() is not None and words[0] in mesh_slugs_on_server(config):
        return rename_mesh(ctx, words[0], " ".join(words[1:]).strip())
    mesh = ctx.mesh(config)
    name = " ".join(words).strip()
    if not name:
        raise CliError("give the new name", INVALID_ARGS)
    reply = run_async(with_client(ctx, mesh, config, lambda c: c.rename_member(name)))
    mesh.member_name = str(reply.get("displayName") or name)
    ctx.save(config)
    ctx.out.result({"ok": True, "memberId": reply.get("memberId"), "memberName": mesh.member_name},
                   f"you are now {mesh.member_name} on {mesh.slug} (peers address you by this name)")
    return 0


def cmd_list(ctx: Context) -> int:
    """Joined meshes, merged with the signed-in account's meshes on the server (client.md §1.5 `list`)."""
    config = ctx.config()
    remote = server_meshes()
    by_id = {m["id"]: m for m in remote or []}
    local_ids = {m.mesh_id for m in config.meshes}
    if ctx.out.as_json:
        records = [{"slug": m.slug, "name": m.name, "meshId": m.mesh_id, "memberId": m.member_id,
                    "pubkey": m.pubkey, "brokerUrl": m.broker_url, "joinedAt": m.joined_at,
                    "local": True, "synced": m.mesh_id in by_id, "role": by_id.get(m.mesh_id, {}).get("role"),
                    "activePeers": by_id.get(m.mesh_id, {}).get("active_peers")} for m in config.meshes]
        records += [{"slug": m["slug"], "name": m["name"], "meshId": m["id"], "role": m["role"], "local": False,
                     "synced": True, "activePeers": m.get("active_peers")} for m in remote or [] if m["id"] not in local_ids]
        ctx.out.json(records)
        return 0
    if not config.meshes and not remote:
        ctx.out.line("No meshes joined. Run `claudemesh join <invite link>` or `claudemesh new <name>`.")
        return 0
    ctx.out.section(f"meshes ({len(config.meshes)} here)")
    for mesh in config.meshes:
        synced = by_id.get(mesh.mesh_id)
        state = f"{synced['role']}, {synced['active_peers']} online" if synced else ("local only" if remote is not None else "")
        ctx.out.line(f"● {mesh.slug}  {mesh.broker_url}  joined {mesh.joined_at or '?'}  {state}".rstrip())
    for entry in remote or []:
        if entry["id"] not in local_ids:
            ctx.out.line(f"○ {entry['slug']}  {entry['role']}, not added on this machine")
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
    account = account_summary()
    # Neither signed in nor joined: nothing to say but how to start (ctx.meshes says it).
    wants_meshes = config.meshes or (account is None and not getattr(ctx.args, "account", False))
    meshes = ctx.meshes(config, all_by_default=True) if wants_meshes else []
    records = [{"slug": m.slug, "meshId": m.mesh_id, "memberId": m.member_id, "pubkey": m.pubkey,
                "brokerUrl": m.broker_url, "memberName": m.member_name, "displayName": session_name(config, m)}
               for m in meshes]
    if ctx.out.as_json:
        document = records[0] if getattr(ctx.args, "mesh", None) else records
        if getattr(ctx.args, "account", False):
            document = {"schema_version": "1.0", "signed_in": account is not None, **(account or {}), "meshes": records}
        ctx.out.json(document)
        return 0
    ctx.out.section("whoami")
    if account is not None:
        user = account["user"]
        ctx.out.line(f"account {user.get('display_name')} <{user.get('email')}> on {account['server']}")
    else:
        ctx.out.line("account not signed in (`claudemesh login`)")
    ctx.out.line(f"config  {ctx.store.path}")
    for record in records:
        ctx.out.line(f"{record['slug']}  {record['memberName'] or '(name not recorded: `claudemesh rename`)'}"
                     f"  member {record['memberId']}  pubkey {record['pubkey'][:16]}…  session name {record['displayName']}")
    return 0
