"""`claudemesh mcp`: the stdio MCP server Claude Code starts (client.md §7, Appendix C tools).

One long-lived broker connection per joined mesh. Every inbound message is stored in the durable inbox
first, then pushed to Claude as a `notifications/claude/channel` notification, then acknowledged to the
broker. stdout carries JSON-RPC only; diagnostics go to stderr.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from functools import partial
from typing import Any

import mcp_types as types
from mcp.server.lowlevel import Server
from mcp.server.stdio import stdio_server
from mcp.shared.message import SessionMessage

from peer.claude_channels import channels_shown
from peer.client import MeshClient
from peer.config import Config, ConfigError, ConfigStore, MeshEntry, session_name
from peer.connection_terms import ConnectionUnavailable, HelloOptions, RequestFailed
from peer.describe import (
    describe_member,
    describe_message_status,
    describe_send,
    message_body,
    messages_text,
    nobody_reached,
    sender_name,
)
from peer.inbox import Inbox, InboxMessage, now_iso
from peer.mcp_coordination import HANDLERS as COORDINATION_HANDLERS
from peer.mcp_files import HANDLERS as FILE_HANDLERS
from peer.mcp_tools import TOOLS, instructions
from peer.session_slots import SessionSlot, claim_slot, slot_keypairs
from peer.targets import TargetError
from protocol.vocabulary import PRIORITIES, STATUSES

SERVER_VERSION = "0.3.0"
CHANNEL_METHOD = "notifications/claude/channel"
PRESENCE_EVENTS = {"peer_joined", "peer_left", "peer_returned", "peer_visible", "peer_hidden"}


def log(message: str) -> None:
    print(f"[claudemesh] {message}", file=sys.stderr, flush=True)




# --- server -----------------------------------------------------------------------------------------------


class MeshMcp:
    def __init__(self, store: ConfigStore, config: Config, meshes: list[MeshEntry], inbox: Inbox):
        self.store = store
        self.config = config
        self.meshes = meshes
        self.inbox = inbox
        self.ready = asyncio.Event()
        self.channels_shown = channels_shown()  # else a pushed message stays new for check_messages
        self.write_stream = None
        self.clients: dict[str, MeshClient] = {}
        self.slots: list[SessionSlot] = []
        explicit_session_id = os.environ.get("CLAUDEMESH_SESSION_ID", "").strip()
        groups = [g for g in config.settings.get("groups") or [] if isinstance(g, dict) and g.get("name")]
        for mesh in meshes:
            # A stable session key and id per slot: a restarted server still receives direct messages that
            # were addressed to it before the restart (peer/session_slots.py).
            slot = claim_slot(store.directory, mesh.slug, mesh.member_id)
            self.slots.append(slot)
            options = HelloOptions(display_name=session_name(config, mesh),
                                   session_id=explicit_session_id or slot.session_id, groups=groups)
            client = MeshClient(mesh, options, inbox=inbox, session=slot.keypair,
                                spare_keys=partial(slot_keypairs, store.directory, mesh.slug))
            client.listeners.append(self.on_message)  # attached before connecting: nothing arrives unseen
            self.clients[mesh.slug] = client

    # --- inbound ------------------------------------------------------------------------------------------

    async def on_message(self, client: MeshClient, message: InboxMessage) -> None:
        mode = self.config.settings.get("messageMode") or "push"
        if mode == "off" and message.kind != "system":
            return
        if message.kind == "system" and message.event in PRESENCE_EVENTS:
            # Every one-shot `claudemesh …` run by any peer joins and leaves: forwarding that would interrupt
            # Claude twice per command. Presence is available on demand through list_peers.
            return
        content, meta = channel_payload(message, mode)
        shown = await self.notify(content, meta)
        if shown and self.channels_shown and mode == "push" and message.kind != "system":
            # Its text reached Claude: check_messages must not hand it over again as new.
            self.inbox.mark_read([message], now_iso())

    async def notify(self, content: str, meta: dict[str, str]) -> bool:
        """Emit the vendor notification as a raw JSON-RPC message (it is not in the SDK's typed union)."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.ready.wait(), 30)
        if self.write_stream is None:
            return False
        notification = types.JSONRPCNotification(jsonrpc="2.0", method=CHANNEL_METHOD,
                                                 params={"content": content, "meta": meta})
        try:
            await self.write_stream.send(SessionMessage(notification))
        except Exception as exc:  # Claude Code went away; the message stays in the inbox
            log(f"could not deliver notification: {exc!r}")
            return False
        return True

    # --- tools --------------------------------------------------------------------------------------------

    async def list_tools(self, _ctx, _params) -> types.ListToolsResult:
        self.ready.set()
        return types.ListToolsResult(tools=TOOLS)

    async def call_tool(self, _ctx, params: types.CallToolRequestParams) -> types.CallToolResult:
        self.ready.set()
        arguments = params.arguments or {}
        handlers = {
            "list_peers": self.tool_list_peers,
            "list_members": self.tool_list_members,
            "send_message": self.tool_send_message,
            "check_messages": self.tool_check_messages,
            "set_summary": self.tool_set_summary,
            "set_status": self.tool_set_status,
            "message_status": self.tool_message_status,
            "topics": self.tool_topics,
            "whoami": self.tool_whoami,
        }
        for_one_mesh = {**COORDINATION_HANDLERS, **FILE_HANDLERS}
        if params.name in for_one_mesh:
            handlers[params.name] = partial(self.tool_coordination, for_one_mesh[params.name])
        handler = handlers.get(params.name)
        if handler is None:
            return _result(f"unknown tool {params.name!r}", error=True)
        if not self.clients and params.name != "check_messages":
            return _result("No meshes joined. Run `claudemesh join <invite link>` first.", error=True)
        try:
            text, error = await handler(arguments)
        except (ConnectionUnavailable, RequestFailed, TargetError, ValueError) as exc:
            return _result(str(exc), error=True)
        return _result(text, error=error)

    def _clients_for(self, slug: Any) -> list[MeshClient]:
        """The mesh a tool names (`mesh_slug`), else every joined one; TargetError for one not joined."""
        if not slug:
            return list(self.clients.values())
        if slug not in self.clients:
            raise TargetError(f"not in a mesh called {slug!r}; joined: {', '.join(self.clients)}", "invalid")
        return [self.clients[slug]]

    async def tool_list_peers(self, args: dict[str, Any]) -> tuple[str, bool]:
        clients = self._clients_for(args.get("mesh_slug"))
        blocks = []
        for client in clients:
            header = f"## {client.mesh.slug} ({client.connection.state}, mesh {client.mesh.mesh_id[:8]}…)"
            try:
                peers = await client.peers()
            except ConnectionUnavailable as exc:
                blocks.append(f"{header}\n{exc}")
                continue
            lines = [header] if peers else [header, "No peers connected."]
            for peer in peers:
                groups = " ".join(f"@{g.get('name')}" for g in peer.get("groups") or [] if isinstance(g, dict))
                summary = f' — "{peer["summary"]}"' if peer.get("summary") else ""
                lines.append(f"- **{peer.get('displayName')}** [{peer.get('status')}]"
                             + (f" [{groups}]" if groups else "") + f" (pubkey: {str(peer.get('pubkey'))[:16]}…){summary}")
            blocks.append("\n".join(lines))
        return "\n\n".join(blocks), False

    async def tool_list_members(self, args: dict[str, Any]) -> tuple[str, bool]:
        clients = self._clients_for(args.get("mesh_slug"))
        blocks = []
        for client in clients:
            try:
                members = await client.members()
            except (ConnectionUnavailable, RequestFailed) as exc:
                blocks.append(f"## {client.mesh.slug}\n{exc}")
                continue
            lines = [f"## {client.mesh.slug} ({len(members)} members)"]
            lines += [f"- {describe_member(m, own_member_id=client.mesh.member_id)}" for m in members]
            blocks.append("\n".join(lines))
        return "\n\n".join(blocks), False

    async def tool_send_message(self, args: dict[str, Any]) -> tuple[str, bool]:
        targets = args.get("to")
        targets = [targets] if isinstance(targets, str) else targets
        message = args.get("message")
        priority = args.get("priority") or "next"
        if not targets or not all(isinstance(t, str) and t for t in targets):
            return "`to` must be a target or a list of targets", True
        if not isinstance(message, str) or not message:
            return "`message` must be a non-empty string", True
        if priority not in PRIORITIES:
            return f"`priority` must be one of {', '.join(PRIORITIES)}", True
        lines, failures, seen = [], 0, set()
        for target in targets:
            try:
                client, to = self._client_for_target(target)
                if (client.mesh.slug, to) in seen:
                    continue
                seen.add((client.mesh.slug, to))
                result = await client.send_text(to, message, priority=priority)
                lines.append(f"{'✗' if nobody_reached(result) else '✓'} {describe_send(result)} "
                             f"(full id {result['messageId']})")
            except (ConnectionUnavailable, RequestFailed, TargetError, ValueError) as exc:
                failures += 1
                lines.append(f"✗ {target}: {exc}")
        return "\n".join(lines), failures == len(targets)

    def _client_for_target(self, target: str) -> tuple[MeshClient, str]:
        slug, sep, rest = target.partition(":")
        if sep and slug in self.clients:
            return self.clients[slug], rest
        if len(self.clients) == 1:
            return next(iter(self.clients.values())), target
        raise TargetError(f"several meshes joined; prefix the target with one of: {', '.join(self.clients)}:",
                          "invalid")

    async def tool_check_messages(self, _args: dict[str, Any]) -> tuple[str, bool]:
        messages = self.inbox.claim_unread(now_iso(), limit=500)  # a hook or another session may be reading too
        if not messages:
            return "No new messages.", False
        return messages_text(messages), False

    async def tool_set_summary(self, args: dict[str, Any]) -> tuple[str, bool]:
        summary = args.get("summary")
        if not isinstance(summary, str):
            return "`summary` must be a string", True
        for client in self.clients.values():
            await client.set_summary(summary)
        return f'Summary set: "{summary}" (visible to {len(self.clients)} mesh(es)).', False

    async def tool_set_status(self, args: dict[str, Any]) -> tuple[str, bool]:
        status = args.get("status")
        if status not in STATUSES:
            return f"`status` must be one of {', '.join(STATUSES)}", True
        for client in self.clients.values():
            await client.set_status(status)
        return f"Status set to {status} across {len(self.clients)} mesh(es).", False

    async def tool_message_status(self, args: dict[str, Any]) -> tuple[str, bool]:
        message_id = args.get("id")
        if not isinstance(message_id, str) or not message_id:
            return "`id` must be a message id", True
        for client in self.clients.values():
            try:
                result = await client.message_status(message_id)
            except (RequestFailed, ConnectionUnavailable):
                continue
            return "\n".join(describe_message_status(result)), False
        return f"Message {message_id} not found or timed out.", True

    async def tool_topics(self, args: dict[str, Any]) -> tuple[str, bool]:
        clients = self._clients_for(args.get("mesh_slug"))
        topic = args.get("topic")
        if not topic:
            blocks = []
            for client in clients:
                lines = [f"## {client.mesh.slug}"]
                lines += [topic_line(t) for t in await client.topics.list()]
                blocks.append("\n".join(lines))
            return "\n\n".join(blocks), False
        if len(clients) > 1:
            return f"several meshes joined: give mesh_slug (one of {', '.join(self.clients)})", True
        client = clients[0]
        limit = args.get("limit") if isinstance(args.get("limit"), int) else 30
        page = await client.topics.history(str(topic), limit=max(1, min(200, limit)), before=args.get("before") or None)
        await client.topics.mark_read(page["topicId"])
        return history_text(page, limit), False

    async def tool_coordination(self, handler, args: dict[str, Any]) -> tuple[str, bool]:
        """State, memory, tasks, reminders, files: one mesh at a time."""
        clients = self._clients_for(args.get("mesh_slug"))
        if len(clients) > 1:
            return f"several meshes joined: give mesh_slug (one of {', '.join(self.clients)})", True
        return await handler(clients[0], args)

    async def tool_whoami(self, _args: dict[str, Any]) -> tuple[str, bool]:
        lines = []
        for client in self.clients.values():
            ack = client.connection.hello_ack
            lines.append(f"{client.mesh.slug}: {ack.get('memberDisplayName') or self.config.display_name or '?'} "
                         f"(member {client.mesh.member_id}, pubkey {client.mesh.pubkey[:16]}…, "
                         f"session {client.connection.session.public_hex[:16]}…, {client.connection.state})")
        return "\n".join(lines), False


def topic_line(topic: dict[str, Any]) -> str:
    unread = f", {topic['unread']} unread" if topic.get("unread") else ""
    joined = "" if topic.get("joined", True) else " — not joined"
    about = f": {topic['description']}" if topic.get("description") else ""
    return f"- #{topic.get('name')} ({topic.get('memberCount', 0)} members{unread}){joined}{about}"


def history_text(page: dict[str, Any], limit: int) -> str:
    messages = list(reversed(page["messages"]))
    if not messages:
        return f"#{page['topic']}: no messages."
    lines = [f"#{page['topic']} — {len(messages)} message(s), oldest first:"]
    for message in messages:
        body = message["text"] if message["text"] is not None else f"⚠ {message['failure']}"
        plain = "" if message["encrypted"] else " (not encrypted)"
        lines.append(f"[{message['createdAt']}] {message['senderName']}{plain} (id {message['id']}): {body}")
    if len(messages) >= limit:
        lines.append(f"(older messages: call topics with before={page['messages'][-1]['id']})")
    return "\n".join(lines)


def channel_payload(message: InboxMessage, mode: str) -> tuple[str, dict[str, str]]:
    """content + string-valued meta for `notifications/claude/channel` (client.md §7.4)."""
    if message.kind == "system":
        meta = {"kind": "system", "event": message.event or "", "mesh_slug": message.mesh_slug, "mesh_id": message.mesh_id}
        if message.event_data:
            meta["eventData"] = message.event_data
        return message.plaintext or "[system]", meta
    from_name = sender_name(message)
    if mode == "inbox":
        return f"[inbox] New message from {from_name}. Use check_messages to read.", {
            "kind": "inbox_notification", "from_name": from_name}
    badge = {"now": "[URGENT] ", "low": "[low] "}.get(message.priority, "")
    kind_badge = {"broadcast": " (broadcast)", "group": " (group)"}.get(message.kind, "")
    if message.topic:
        kind_badge = f" in #{message.topic}"
    meta = {
        "from_id": message.sender_pubkey,
        "from_name": from_name,
        "from_member_id": message.sender_member_id or "",
        "mesh_slug": message.mesh_slug,
        "mesh_id": message.mesh_id,
        "message_id": message.message_id,
        "priority": message.priority,
        "sent_at": message.created_at,
        "delivered_at": message.received_at,
        "kind": message.kind,
    }
    if message.subtype:
        meta["subtype"] = message.subtype
    if message.topic:
        meta["topic"] = message.topic
    return f"{badge}{from_name}{kind_badge}: {message_body(message)}", meta


def _result(text: str, *, error: bool = False) -> types.CallToolResult:
    return types.CallToolResult(content=[types.TextContent(type="text", text=text)], is_error=error)


async def run_server(store: ConfigStore, mesh_slug: str | None) -> int:
    config = store.load()
    meshes = config.meshes
    if mesh_slug:
        meshes = [m for m in meshes if m.slug == mesh_slug]
        if not meshes:
            log(f'--mesh "{mesh_slug}" not found in config. Joined meshes: {", ".join(m.slug for m in config.meshes)}')
            return 1
    inbox = Inbox(store.directory)
    app = MeshMcp(store, config, meshes, inbox)

    async def on_initialized(_ctx, _params) -> None:
        app.ready.set()

    server = Server("claudemesh", version=SERVER_VERSION, instructions=instructions(config, meshes),
                    on_list_tools=app.list_tools, on_call_tool=app.call_tool)
    server.add_notification_handler("notifications/initialized", types.NotificationParams, on_initialized)
    options = server.create_initialization_options(experimental_capabilities={"claude/channel": {}})
    try:
        async with stdio_server() as (read_stream, write_stream):
            app.write_stream = write_stream
            for client in app.clients.values():
                client.start()  # in the background: initialize is answered before any broker connects
            await server.run(read_stream, write_stream, options)
    finally:
        app.write_stream = None
        for client in app.clients.values():
            await client.close()
        for slot in app.slots:
            slot.release()
        inbox.close()
    return 0


def serve(store: ConfigStore, mesh_slug: str | None = None) -> int:
    try:
        return asyncio.run(run_server(store, mesh_slug))
    except KeyboardInterrupt:
        return 0
    except ConfigError as exc:
        log(str(exc))
        return 1
