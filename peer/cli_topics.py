"""`claudemesh topic create|list|join|leave|members|history|read` (client.md §1.5, protocol.md §5.1): the verbs,
their JSON, and the human view. History is opened with the keyring and printed oldest first."""

from __future__ import annotations

from peer.cli_context import Context, run_async, with_client
from peer.describe import local_time
from peer.inbox import WAITING


def cmd_topic(ctx: Context) -> int:
    config = ctx.config()
    mesh = ctx.mesh(config)
    action = ctx.args.action
    return VERBS[action](ctx, lambda act: run_async(with_client(ctx, mesh, config, lambda c: act(c.topics))))


def _create(ctx: Context, run) -> int:
    reply = run(lambda t: t.create(ctx.args.name, description=ctx.args.description, visibility=ctx.args.visibility))
    topic = reply.get("topic") or {}
    record = {"id": topic.get("id"), "name": topic.get("name"), "created": reply.get("created")}
    ctx.out.result(record, f"#{topic.get('name')} {'created' if reply.get('created') else 'already exists'} ({topic.get('id')})")
    return 0


def _list(ctx: Context, run) -> int:
    topics = run(lambda t: t.list())
    if ctx.out.as_json:
        ctx.out.json({"topics": topics})
        return 0
    if not topics:
        ctx.out.line("no topics")
    for topic in topics:
        unread = f", {topic['unread']} unread" if topic.get("unread") else ""
        joined = "" if topic.get("joined", True) else " (not joined)"
        ctx.out.line(f"#{topic.get('name')}  {topic.get('memberCount', 0)} members{unread}{joined}"
                     + (f" — {topic['description']}" if topic.get("description") else ""))
    return 0


def _join(ctx: Context, run) -> int:
    run(lambda t: t.join(ctx.args.topic, role=ctx.args.role))
    ctx.out.result({"joined": ctx.args.topic}, f"joined #{ctx.args.topic.lstrip('#')}")
    return 0


def _leave(ctx: Context, run) -> int:
    run(lambda t: t.leave(ctx.args.topic))
    ctx.out.result({"left": ctx.args.topic}, f"left #{ctx.args.topic.lstrip('#')}")
    return 0


def _read(ctx: Context, run) -> int:
    run(lambda t: t.mark_read(ctx.args.topic))
    ctx.out.result({"read": ctx.args.topic}, f"#{ctx.args.topic.lstrip('#')} marked read")
    return 0


def _members(ctx: Context, run) -> int:
    members = run(lambda t: t.members(ctx.args.topic))
    if ctx.out.as_json:
        ctx.out.json({"topic": ctx.args.topic, "members": members})
        return 0
    for member in members:
        ctx.out.line(f"{member.get('displayName')} ({member.get('role')}) · member {str(member.get('memberId'))[:8]}")
    return 0


def _history(ctx: Context, run) -> int:
    page = run(lambda t: t.history(ctx.args.topic, limit=ctx.args.limit, before=ctx.args.before))
    if ctx.out.as_json:
        ctx.out.json(page)
        return 0
    messages = list(reversed(page["messages"]))
    if not messages:
        ctx.out.line(f"#{page['topic']}: no messages")
    for message in messages:
        ctx.out.line(f"{message['senderName']}  {local_time(message['createdAt'])}  [{message['id'][:8]}]"
                     + ("" if message["encrypted"] else "  (not encrypted)"))
        ctx.out.line(history_text(message))
    if len(page["messages"]) >= ctx.args.limit:
        ctx.out.line(f"older: claudemesh topic history {page['topic']} --before {page['messages'][-1]['id']}")
    return 0


def history_text(message: dict) -> str:
    if message["text"] is not None:
        return message["text"]
    if message["failure"] == WAITING:
        return f"[{WAITING}: try again in a moment]"
    return f"[undecryptable: {message['failure']}]"


VERBS = {
    "create": _create, "list": _list, "join": _join, "leave": _leave, "members": _members, "history": _history,
    "read": _read,
}  # fmt: skip
