"""`claudemesh invite` and `claudemesh apikey create | list | revoke`: what an owner or admin does from the terminal."""

from __future__ import annotations

from peer.cli_account import invite_by_account
from peer.cli_context import Context, run_async, run_on_mesh, split_list, with_client
from peer.output import INTERNAL_ERROR, INVALID_ARGS, NOT_FOUND, CliError
from protocol.vocabulary import API_KEY_CAPABILITIES


def cmd_invite(ctx: Context) -> int:
    """Over the mesh connection; with `--email` (or for a mesh not joined here) through the signed-in account."""
    config = ctx.config()
    slug = getattr(ctx.args, "mesh", None)
    if ctx.args.email or (slug and config.find(slug) is None):
        return _invite_by_account(ctx, slug or ctx.mesh(config).slug)
    mesh = ctx.mesh(config)
    reply = run_async(with_client(ctx, mesh, config, lambda c: c.invite_create(
        role=ctx.args.role, max_uses=ctx.args.max_uses, expires_in_days=ctx.args.expires_days)))
    if ctx.out.as_json:
        ctx.out.json({k: v for k, v in reply.items() if k not in ("type", "_reqId")})
        return 0
    ctx.out.ok(f"invite created for {mesh.slug}")
    ctx.out.line(f"link   {reply.get('shortUrl') or reply.get('url')}")
    if reply.get("url") and reply.get("shortUrl"):
        ctx.out.line(f"full   {reply.get('url')}")
    ctx.out.line(f"code   {reply.get('code')}")
    ctx.out.line(f"Expires {reply.get('expiresAt')}. Anyone with this link can join \"{mesh.slug}\".")
    return 0


def _invite_by_account(ctx: Context, slug: str) -> int:
    reply = invite_by_account(ctx, slug)
    if ctx.out.as_json:
        ctx.out.json(reply)
        return 0
    if reply.get("emailed"):
        ctx.out.ok(f"invite sent to {ctx.args.email}")
    elif ctx.args.email:
        ctx.out.warn(f"the e-mail to {ctx.args.email} could not be sent: share the link yourself")
    ctx.out.line(f"link   {reply.get('url')}")
    ctx.out.line(f"code   {reply.get('code')}")
    ctx.out.line(f"Expires {reply.get('expires_at')}. Anyone with this link can join \"{slug}\".")
    return 0


def cmd_apikey_create(ctx: Context) -> int:
    config = ctx.config()
    mesh = ctx.mesh(config)
    capabilities = split_list(ctx.args.cap) if ctx.args.cap is not None else ["send", "read"]
    unknown = [c for c in capabilities if c not in API_KEY_CAPABILITIES]
    if unknown or not capabilities:
        raise CliError(f"capabilities must be from {', '.join(API_KEY_CAPABILITIES)} (got {', '.join(unknown) or 'none'})",
                       INVALID_ARGS)
    topics = [t.lstrip("#") for t in split_list(ctx.args.topic)] if ctx.args.topic else None
    key = run_async(with_client(ctx, mesh, config, lambda c: c.apikey_create(
        label=ctx.args.label, capabilities=capabilities, topics=topics, expires_at=ctx.args.expires,
        member_id=getattr(ctx.args, "member", None))))
    key = {k: v for k, v in key.items() if k not in ("type", "_reqId")}
    if ctx.out.as_json:
        ctx.out.json(key)
        return 0
    ctx.out.ok(f"created ({key.get('label')} {str(key.get('id'))[:8]})")
    ctx.out.warn("the secret is shown once — store it now:")
    ctx.out.line(str(key.get("secret")))
    ctx.out.line(f"capabilities: {', '.join(key.get('capabilities') or [])}")
    scopes = key.get("topicScopes")
    ctx.out.line(f"topics: {', '.join('#' + t for t in scopes)}" if scopes else "topics: all (no scope)")
    return 0


def cmd_apikey_list(ctx: Context) -> int:
    config = ctx.config()
    mesh = ctx.mesh(config)
    keys = run_async(with_client(ctx, mesh, config, lambda c: c.apikey_list()))
    if ctx.out.as_json:
        ctx.out.json(keys)
        return 0
    if not keys:
        ctx.out.line("no api keys in this mesh.")
        return 0
    ctx.out.section(f"api keys ({len(keys)})")
    for key in keys:
        state = key.get("status") or ("revoked" if key.get("revokedAt") else "active")  # older brokers: no status
        ctx.out.line(f"{key.get('label')}  {state}  {str(key.get('id'))[:8]}")
        ctx.out.line(f"  {key.get('prefix')}…  caps: {','.join(key.get('capabilities') or [])}  "
                     f"last_used: {key.get('lastUsedAt') or 'never'}")
    return 0


def cmd_apikey_revoke(ctx: Context) -> int:
    config = ctx.config()
    mesh = ctx.mesh(config)
    reply = run_async(with_client(ctx, mesh, config, lambda c: c.apikey_revoke(ctx.args.id)))
    status = reply.get("status")
    if status == "revoked":
        ctx.out.result({"revoked": reply.get("id")}, f"revoked ({str(reply.get('id'))[:8]})")
        return 0
    if status == "not_found":
        raise CliError(f"not_found: no api key matches {ctx.args.id!r}", NOT_FOUND, code="not_found")
    if status == "not_unique":
        raise CliError(f"not_unique: {ctx.args.id!r} matches several api keys; give more of the id",
                       INVALID_ARGS, code="not_unique")
    raise CliError(f"apikey revoke failed: unexpected reply {status!r}", INTERNAL_ERROR)


def cmd_webhook(ctx: Context) -> int:
    """`webhook create <name> [--signed] | list | delete <name>` (owner/admin): URLs CI or monitoring POST JSON to."""
    args = ctx.args
    if args.action in ("create", "delete") and not args.name:
        raise CliError(f"webhook {args.action} needs a name", INVALID_ARGS)
    frame: dict = {"type": f"{args.action}_webhook" if args.action != "list" else "list_webhooks"}
    if args.name:
        frame["name"] = args.name
    if args.action == "create" and args.signed:
        frame["signed"] = True
    reply_type = "webhook_list" if args.action == "list" else "webhook_ack"
    reply = run_on_mesh(ctx, lambda c: c.connection.request(frame, reply_type))
    reply = {k: v for k, v in reply.items() if k not in ("type", "_reqId")}
    if ctx.out.as_json:
        ctx.out.json(reply)
        return 0
    if args.action == "list":
        hooks = reply.get("webhooks") or []
        if not hooks:
            ctx.out.line("no webhooks in this mesh.")
        for hook in hooks:
            signed = "signed" if hook.get("signed") else "unsigned"
            ctx.out.line(f"{hook.get('name')}  {signed}  {hook.get('deliveries', 0)} deliveries  {hook.get('url')}")
        return 0
    if args.action == "delete":
        ctx.out.ok(f"webhook {args.name} deleted: its URL answers 401 from now on")
        return 0
    ctx.out.ok(f"webhook {reply.get('name')} created")
    ctx.out.warn("anyone with this URL can post into the mesh — keep it secret:")
    ctx.out.line(str(reply.get("url")))
    if reply.get("signingSecret"):
        ctx.out.line(f"HMAC secret (X-Hub-Signature-256, shown once): {reply['signingSecret']}")
    return 0
