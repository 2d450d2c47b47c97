"""`claudemesh inbox` and `claudemesh watch`: reading what arrived, stored first, then shown."""

from __future__ import annotations

import asyncio
import json
import sys

from peer.cli_context import CONNECT_TIMEOUT, Context, run_async, with_client
from peer.client import MeshClient
from peer.describe import local_time, sender_label
from peer.inbox import WAITING, InboxMessage, now_iso
from peer.output import AUTH_FAILED, INTERRUPTED_BY_SIGINT, INTERRUPTED_BY_SIGTERM, CliError, Output
from peer.session_slots import claim_slot


def cmd_inbox(ctx: Context) -> int:
    config = ctx.config()
    meshes = ctx.meshes(config, all_by_default=True)
    inbox = ctx.inbox()
    try:
        if not ctx.args.local:
            for mesh in meshes:
                # Drain what the broker queued for us; the client stores it in the inbox before acknowledging.
                try:
                    run_async(with_client(ctx, mesh, config, lambda c: asyncio.sleep(ctx.args.wait), inbox=inbox))
                except CliError as exc:  # still show what is stored locally
                    print(f"  ⚠ {mesh.slug}: {exc.message} — showing stored messages only", file=sys.stderr)
        slug = meshes[0].slug if len(meshes) == 1 else None
        messages = inbox.all(slug) if ctx.args.all else inbox.unread(slug)
        if not ctx.args.peek:
            inbox.mark_read([m for m in messages if m.read_at is None], now_iso())
    finally:
        inbox.close()
    if ctx.out.as_json:
        ctx.out.json([m.as_record() for m in messages])
        return 0
    if not messages:
        ctx.out.line("No new messages." if not ctx.args.all else "No messages.")
        return 0
    ctx.out.section(f"inbox ({len(messages)} message{'s' if len(messages) != 1 else ''})")
    for message in messages:
        print_message(ctx.out, message)
    return 0


def print_message(out: Output, message: InboxMessage) -> None:
    sender = sender_label(message)
    tag = {"direct": "→ direct", "group": "group", "broadcast": "broadcast (plaintext)"}.get(message.kind, message.kind)
    if message.topic:
        tag = f"#{message.topic}" + (", not encrypted" if message.kind == "broadcast" else "")
    out.line(f"{sender} [{tag}] [{message.priority}] {local_time(message.created_at)}  ({message.mesh_slug})")
    out.line(message_text(message))
    out.line()


def message_text(message: InboxMessage) -> str:
    if message.plaintext is not None:
        return message.plaintext
    if message.failure == WAITING:
        return f"[{WAITING}: it opens when one is]"
    return f"[undecryptable: {message.failure}]"


def cmd_watch(ctx: Context) -> int:
    """Stay connected, store and print messages as they arrive (the CLI's push-pipe)."""
    config = ctx.config()
    meshes = ctx.meshes(config, all_by_default=True)
    inbox = ctx.inbox()

    async def printer(_client: MeshClient, message: InboxMessage) -> None:
        if message.kind == "system":
            return
        if ctx.out.as_json:
            print(json.dumps(message.as_record(), ensure_ascii=False), flush=True)
        else:
            print_message(ctx.out, message)
        inbox.mark_read([message], now_iso())  # shown here: check_messages and `inbox` do not show it again
    async def watch() -> None:
        slots = [claim_slot(ctx.store.directory, mesh.slug, mesh.member_id, role="watch") for mesh in meshes]
        clients = [ctx.client(mesh, config, inbox=inbox, long_lived=True, groups=True, slot=slot)
                   for mesh, slot in zip(meshes, slots, strict=True)]
        for client in clients:
            client.listeners.append(printer)
            client.start()
        try:
            for client in clients:
                await client.connection.wait_open(CONNECT_TIMEOUT)
            if not ctx.out.as_json:
                ctx.out.ok(f"watching {', '.join(m.slug for m in meshes)} (Ctrl-C to stop)")
            else:
                print('{"ready": true}', flush=True)
            loop = asyncio.get_running_loop()
            until = loop.time() + ctx.args.seconds if ctx.args.seconds else None
            # Every mesh kicked or banned us: nothing will ever arrive, so say so and stop.
            while not all(client.connection.terminal for client in clients):
                if until is not None and loop.time() >= until:
                    return
                await asyncio.sleep(0.25)
            raise CliError("; ".join(f"{c.mesh.slug}: {c.connection.terminal_text()}" for c in clients), AUTH_FAILED)
        finally:
            for client in clients:
                await client.close()
            for slot in slots:
                slot.release()

    try:
        run_async(watch(), forever=True)
    except CliError as exc:
        if exc.exit_code not in (INTERRUPTED_BY_SIGINT, INTERRUPTED_BY_SIGTERM):
            raise
    finally:  # Ctrl-C or SIGTERM is how a watch ends: exit 0
        inbox.close()
    return 0
