"""`claudemesh state get|set|list`, `remember`, `recall`, `forget`, `task create|list|claim|complete`,
`remind … | remind list|cancel` (alias `schedule`) and `info` (client.md §1.5, protocol.md §5.4–5.8): the verbs,
their flags, their JSON and the human view. Values, memories, titles and reminder texts are sealed by the client
library before they leave."""

from __future__ import annotations

import json
from typing import Any

from peer.cli_context import Context, Parser, run_on_mesh, split_list
from peer.describe import local_time
from peer.inbox import WAITING
from peer.output import INVALID_ARGS, NOT_FOUND, CliError
from peer.reminders import WhenError, looks_like_when, parse_when
from protocol.encoding import from_epoch_ms


def _unreadable(failure: str | None) -> str:
    return f"[{WAITING}: try again in a moment]" if failure == WAITING else f"[unreadable: {failure}]"


# --- state --------------------------------------------------------------------------------------------------


def _parse_value(text: str) -> Any:
    """As the reference CLI: JSON when it parses, else the text itself."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def _state_line(entry: dict[str, Any]) -> str:
    value = json.dumps(entry["value"], ensure_ascii=False) if entry["failure"] is None else _unreadable(entry["failure"])
    by = f"  (set by {entry['updatedBy']}, {local_time(entry['updatedAt'])}, v{entry['version']})" if entry["set"] else ""
    return f"{entry['key']} = {value}{by}"


def cmd_state(ctx: Context) -> int:
    args = ctx.args
    if args.action == "set":
        if args.value is None:
            raise CliError("state set needs a key and a value", INVALID_ARGS)
        stored = run_on_mesh(ctx, lambda c: c.coordination.state_set(args.key, _parse_value(args.value),
                                                               expected_version=args.expect_version))
        ctx.out.result(stored, f"{args.key} set (version {stored['version']}, encrypted)" if stored["encrypted"]
                       else f"{args.key} sent (not encrypted: this broker cannot seal values)")
        return 0
    if args.action == "get":
        if not args.key:
            raise CliError("state get needs a key", INVALID_ARGS)
        entry = run_on_mesh(ctx, lambda c: c.coordination.state_get(args.key))
        if ctx.out.as_json:
            ctx.out.json(entry)
        else:
            ctx.out.line(_state_line(entry) if entry["set"] else f"{args.key}: (not set)")
        return 0
    entries = run_on_mesh(ctx, lambda c: c.coordination.state_list())
    if ctx.out.as_json:
        ctx.out.json({"entries": entries})
        return 0
    if not entries:
        ctx.out.line("no shared state")
    for entry in entries:
        ctx.out.line(_state_line(entry))
    return 0


# --- memory -------------------------------------------------------------------------------------------------


def cmd_remember(ctx: Context) -> int:
    text = " ".join(ctx.args.text)
    stored = run_on_mesh(ctx, lambda c: c.coordination.remember(text, tags=split_list(ctx.args.tags)))
    ctx.out.result(stored, f"remembered ({stored['id']})")
    return 0


def cmd_recall(ctx: Context) -> int:
    query = " ".join(ctx.args.query)
    found = run_on_mesh(ctx, lambda c: c.coordination.recall(query, include_plaintext=ctx.args.plaintext))
    if ctx.out.as_json:
        ctx.out.json({"query": query, "memories": found})
        return 0
    if not found:
        ctx.out.line(f"nothing remembered about {query!r}")
    for memory in found:
        content = memory["content"] if memory["failure"] is None else _unreadable(memory["failure"])
        tags = f"  [{', '.join(memory['tags'])}]" if memory["tags"] else ""
        plain = "" if memory["encrypted"] else "  (not encrypted)"
        ctx.out.line(f"{str(memory['id'])[:8]}  {memory['rememberedBy']}, {local_time(memory['rememberedAt'])}{tags}{plain}")
        ctx.out.line(f"  {content}")
    return 0


def cmd_forget(ctx: Context) -> int:
    outcome = run_on_mesh(ctx, lambda c: c.coordination.forget(ctx.args.id))
    if outcome["forgotten"] is False:
        raise CliError(f"no memory {ctx.args.id} in this mesh (or it was already forgotten)", NOT_FOUND, code="not_found")
    ctx.out.result(outcome, f"forgot {ctx.args.id}")
    return 0


# --- tasks --------------------------------------------------------------------------------------------------


def _task_line(task: dict[str, Any]) -> str:
    title = task.get("title") if task.get("failure") is None else _unreadable(task["failure"])
    who = f" → {task['assignee']}" if task.get("assignee") else ""
    claimed = f", claimed by {task['claimedBy']}" if task.get("claimedBy") else ""
    return f"{str(task.get('id'))[:8]}  [{task.get('status')}] ({task.get('priority')}){who}{claimed}  {title}"


def cmd_task(ctx: Context) -> int:
    args = ctx.args
    if args.action == "create":
        task = run_on_mesh(ctx, lambda c: c.coordination.task_create(" ".join(args.title), assignee=args.assignee,
                                                              priority=args.priority, tags=split_list(args.tags)))
        ctx.out.result(task, f"task created ({task.get('id')})")
    elif args.action == "claim":
        task = run_on_mesh(ctx, lambda c: c.coordination.task_claim(args.id))
        ctx.out.result(task, f"claimed {args.id}")
    elif args.action == "complete":
        result = " ".join(args.result) or None
        task = run_on_mesh(ctx, lambda c: c.coordination.task_complete(args.id, result))
        ctx.out.result(task, f"completed {args.id}")
    else:
        tasks = run_on_mesh(ctx, lambda c: c.coordination.task_list(status=args.status, assignee=args.assignee))
        if ctx.out.as_json:
            ctx.out.json({"tasks": tasks})
        elif not tasks:
            ctx.out.line("no tasks")
        for task in tasks if not ctx.out.as_json else []:
            ctx.out.line(_task_line(task))
    return 0


# --- reminders ----------------------------------------------------------------------------------------------


def cmd_remind(ctx: Context) -> int:
    args = ctx.args
    words = list(args.text)
    if words and words[0] in ("list", "cancel") and not (args.at or args.delay or args.cron):
        return _remind_list(ctx) if words[0] == "list" else _remind_cancel(ctx, words[1:])
    when = args.at or args.delay
    if not (when or args.cron) and len(words) > 1 and looks_like_when(words[0]):
        when, words = words[0], words[1:]  # `remind 30m stretch`
    if not words or not (when or args.cron):
        raise CliError("remind needs a text and a time: remind 30m <text>, --in 2h, --at 09:30 or --cron '0 9 * * 1-5'",
                       INVALID_ARGS)
    try:
        at = parse_when(when) if when else None
    except WhenError as exc:
        raise CliError(str(exc), INVALID_ARGS) from None
    text = " ".join(words)
    ack = run_on_mesh(ctx, lambda c: c.reminders.schedule(text, at=at, cron=args.cron, to=args.to, zone=args.tz))
    first = from_epoch_ms(int(ack.get("deliverAt") or 0)).astimezone()
    repeat = f" (then {ack['cron']}, {ack.get('timeZone')})" if ack.get("cron") else ""
    ctx.out.result(ack, f"reminder {ack.get('scheduledId')} at {first:%Y-%m-%d %H:%M}{repeat}")
    return 0


def _remind_list(ctx: Context) -> int:
    entries = run_on_mesh(ctx, lambda c: c.reminders.list())
    if ctx.out.as_json:
        ctx.out.json({"scheduled": entries})
        return 0
    if not entries:
        ctx.out.line("nothing scheduled")
    for entry in entries:
        at = from_epoch_ms(int(entry["deliverAt"] or 0)).astimezone()
        cron = f"  cron {entry['cron']} ({entry.get('timeZone')}), fired {entry.get('firedCount') or 0}×" if entry[
            "cron"] else ""
        text = entry["text"] if entry["text"] is not None else "[sealed to its target]"
        ctx.out.line(f"{entry['id']}  next {at:%Y-%m-%d %H:%M}{cron}  → {str(entry['to'])[:16]}")
        ctx.out.line(f"  {text}")
    return 0


def _remind_cancel(ctx: Context, ids: list[str]) -> int:
    if len(ids) != 1:
        raise CliError("remind cancel needs one scheduled id (see `claudemesh remind list`)", INVALID_ARGS)
    outcome = run_on_mesh(ctx, lambda c: c.reminders.cancel(ids[0]))
    if not outcome["ok"]:
        raise CliError(f"nothing of yours scheduled as {ids[0]}", NOT_FOUND, code="not_found")
    ctx.out.result(outcome, f"cancelled {ids[0]}")
    return 0


def cmd_schedule(ctx: Context) -> int:
    if ctx.args.action == "list":
        return _remind_list(ctx)
    return _remind_cancel(ctx, [ctx.args.id] if ctx.args.id else [])


# --- overview -----------------------------------------------------------------------------------------------


def cmd_info(ctx: Context) -> int:
    info = run_on_mesh(ctx, lambda c: c.coordination.info())
    info = {k: v for k, v in info.items() if k not in ("type", "_reqId")}
    if ctx.out.as_json:
        ctx.out.json(info)
        return 0
    tasks = info.get("tasks") or {}
    ctx.out.line(f"mesh {info.get('mesh')} · you are {info.get('yourName')}")
    ctx.out.line(f"{info.get('peers')} connected · groups {', '.join(info.get('groups') or []) or 'none'}")
    ctx.out.line(f"state keys {len(info.get('stateKeys') or [])} · memories {info.get('memoryCount')} · tasks "
                 f"{tasks.get('open', 0)} open, {tasks.get('claimed', 0)} claimed, {tasks.get('done', 0)} done")
    return 0


# --- parser -------------------------------------------------------------------------------------------------


def add_coordination_commands(add, common: Parser) -> None:
    p = add("state", cmd_state, "shared state of the mesh: get, set, list (values end-to-end encrypted)")
    p.add_argument("action", choices=("get", "set", "list"))
    p.add_argument("key", nargs="?")
    p.add_argument("value", nargs="?", help="JSON, or text")
    p.add_argument("--expect-version", type=int, help="set only if the key is at this version (0: not set yet)")
    p = add("remember", cmd_remember, "store a memory for the whole mesh (end-to-end encrypted)")
    p.add_argument("text", nargs="+")
    p.add_argument("--tags", help="comma list")
    p = add("recall", cmd_recall, "search the mesh's memories by word")
    p.add_argument("query", nargs="+")
    p.add_argument("--plaintext", action="store_true",
                   help="also search reference clients' unencrypted memories (sends the query in the clear)")
    p = add("forget", cmd_forget, "forget a memory")
    p.add_argument("id")
    p = add("task", None, "shared tasks: create, list, claim, complete")
    task = p.add_subparsers(dest="action", metavar="<create|list|claim|complete>", parser_class=Parser, required=True)
    q = task.add_parser("create", parents=[common])
    q.add_argument("title", nargs="+")
    q.add_argument("--assignee")
    q.add_argument("--priority", help="free text (default normal)")
    q.add_argument("--tags", help="comma list")
    q = task.add_parser("list", parents=[common])
    q.add_argument("--status", choices=("open", "claimed", "done"))
    q.add_argument("--assignee")
    task.add_parser("claim", parents=[common]).add_argument("id")
    q = task.add_parser("complete", parents=[common])
    q.add_argument("id")
    q.add_argument("result", nargs="*")
    for verb in task.choices.values():
        verb.set_defaults(handler=cmd_task)
    p = add("remind", cmd_remind, "remind yourself (or --to someone) later; `remind list`, `remind cancel <id>`")
    p.add_argument("text", nargs="+", help="[when] text: 30m, 2h, 1d, 09:30 or an ISO time, then the text")
    p.add_argument("--in", dest="delay", help="e.g. 30m, 2h, 90s, 1d")
    p.add_argument("--at", help="HH:MM (next occurrence, local time) or an ISO date-time")
    p.add_argument("--cron", help="5 fields: minute hour day-of-month month day-of-week (0-6, 0 = Sunday)")
    p.add_argument("--to", help="member or session name, pubkey, @group, * or #topic (default: yourself)")
    p.add_argument("--tz", help="time zone of --cron (default: this machine's)")
    p = add("schedule", cmd_schedule, "scheduled messages: list, cancel <id>")
    p.add_argument("action", choices=("list", "cancel"))
    p.add_argument("id", nargs="?")
    add("info", cmd_info, "the mesh at a glance: peers, groups, state keys, memories, tasks")
