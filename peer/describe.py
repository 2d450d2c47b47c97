"""Plain words for what the broker said, shared by the CLI and the MCP server: what a send did per recipient,
who the members are, what became of a message."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from peer.inbox import WAITING, InboxMessage

STATE_WORDS = {
    "live": "delivered to a live session",
    "held": "held by their status until they are idle (send with priority now to interrupt)",
    "queued": "queued: they are offline and get it when they connect",
    "queue_full": "not queued: too many of your messages already wait for them",
}


def describe_send(result: dict[str, Any]) -> str:
    """One line per send, e.g. `bob: delivered to a live session · id AbC12345`."""
    short_id = str(result.get("messageId") or "")[:8]
    label = str(result.get("label") or result.get("target") or "?")
    reach = result.get("reach")
    if not isinstance(reach, dict):  # a broker that does not report delivery (the reference)
        return f"sent to {label} (this broker does not say whether it was delivered) · id {short_id}"
    recipients = [r for r in result.get("recipients") or [] if isinstance(r, dict)]
    ended = " (that session has ended: its member's next session gets it)" if result.get("sessionEnded") else ""
    if len(recipients) == 1 and not result.get("queueFull") and not str(result.get("targetSpec", "")).startswith(("@", "*", "#")):
        recipient = recipients[0]
        words = STATE_WORDS.get(str(recipient.get("state")), str(recipient.get("state")))
        return f"{recipient.get('name') or label}: {words}{ended} · id {short_id}"
    parts = [f"{reach.get('live', 0)} delivered live"]
    queued = [r for r in recipients if r.get("state") == "queued"]
    if reach.get("queued"):
        names = ", ".join(str(r.get("name")) for r in queued[:5]) + (", …" if len(queued) > 5 else "")
        parts.append(f"queued for {reach['queued']} offline member{'s' if reach['queued'] != 1 else ''} ({names})")
    if reach.get("held"):
        parts.append(f"{reach['held']} held by status")
    if result.get("queueFull"):
        parts.append(f"{result['queueFull']} not queued (their queue of your messages is full)")
    if not recipients:
        parts = ["nobody received it (no member matches)"]
    if _to_topic(result):  # offline members read it in the history, with an unread count
        parts = [p for p in parts if not p.startswith("nobody")] or ["no other member online"]
        parts.append("kept in the topic's history")
    return f"{label}: " + ", ".join(parts) + f"{ended} · id {short_id}"


def nobody_reached(result: dict[str, Any]) -> bool:
    reach = result.get("reach")
    return isinstance(reach, dict) and not result.get("recipients") and not _to_topic(result)


def _to_topic(result: dict[str, Any]) -> bool:
    return str(result.get("targetSpec", "")).startswith("#")


def local_time(iso: str | None) -> str:
    if not iso:
        return "never"
    try:
        return datetime.fromisoformat(iso.replace("Z", "+00:00")).astimezone().strftime("%Y-%m-%d %H:%M:%S")
    except ValueError:
        return iso


def describe_member(member: dict[str, Any], *, own_member_id: str | None = None) -> str:
    """`● alice  admin  online  member AbC12345` (○ and `last seen …` when offline)."""
    online = bool(member.get("online"))
    seen = "online" if online else f"last seen {local_time(member.get('lastSeenAt'))}"
    you = "  (you)" if own_member_id and member.get("memberId") == own_member_id else ""
    groups = " ".join(f"@{g.get('name')}" for g in member.get("groups") or [] if isinstance(g, dict))
    return (f"{'●' if online else '○'} {member.get('displayName')}  {member.get('role') or 'member'}  {seen}"
            f"  member {str(member.get('memberId'))[:8]}" + (f"  {groups}" if groups else "") + you)


def describe_message_status(result: dict[str, Any]) -> list[str]:
    delivered = "yes" if result.get("delivered") else "not yet"
    at = f" (at {local_time(result['deliveredAt'])})" if result.get("deliveredAt") else ""
    lines = [f"message {str(result.get('messageId'))[:12]}… → {result.get('targetSpec')}",
             f"delivered to everyone: {delivered}{at}"]
    words = {"delivered": "delivered", "held": "not delivered yet", "disconnected": "no such recipient"}
    for recipient in result.get("recipients") or []:
        who = recipient.get("name") or "?"
        member = f" (member {str(recipient['memberId'])[:8]})" if recipient.get("memberId") else ""
        lines.append(f"  - {who}{member}: {words.get(str(recipient.get('status')), recipient.get('status'))}")
    return lines


def sender_name(message: InboxMessage) -> str:
    return message.sender_name or f"peer-{message.sender_pubkey[:8]}"


def sender_label(message: InboxMessage) -> str:
    """Who wrote it: the member's name and id, whatever (possibly long gone) session sent it."""
    name = sender_name(message)
    return f"{name} (member {message.sender_member_id[:8]})" if message.sender_member_id else name


def message_body(message: InboxMessage) -> str:
    if message.plaintext is not None:
        return message.plaintext
    if message.failure == WAITING:
        return f"⏳ {WAITING}: it opens when one is (check_messages again later)"
    sender = f"{message.sender_pubkey[:12]}…" if message.sender_pubkey else "unknown sender"
    return f"⚠ message from {sender} failed to decrypt ({message.failure or 'tampered or wrong keypair'})"


def messages_text(messages: list[InboxMessage]) -> str:
    """Messages as Claude reads them (check_messages, and the hooks that hand them to a session)."""
    blocks = []
    for message in messages:
        tag = " [REMINDER]" if message.subtype == "reminder" else ""
        tag += f" in #{message.topic}" if message.topic else ""
        blocks.append(f"[{message.mesh_slug}]{tag} from {sender_label(message)} ({message.sender_pubkey[:12]}…, "
                      f"{message.kind}, {message.priority}, {message.created_at}):\n{message_body(message)}")
    return f"{len(messages)} new message(s):\n\n" + "\n\n---\n\n".join(blocks)


TASK_VERBS = {"task_created": "created", "task_claimed": "claimed", "task_done": "completed"}


def system_text(event: str, data: dict[str, Any]) -> str:
    """Readable text for broker events (client.md §7.4 system table, the common ones)."""
    name = data.get("name") or data.get("displayName") or "unknown"
    if event == "peer_joined":
        return f'[system] Peer "{name}" joined the mesh'
    if event == "peer_returned":
        return f'[system] Welcome back, "{name}"!'
    if event == "peer_left":
        return f'[system] Peer "{name}" left the mesh'
    if event in TASK_VERBS:
        title = f' "{data["title"]}"' if data.get("title") else ""
        return f"[system] {data.get('by') or 'someone'} {TASK_VERBS[event]} task {str(data.get('taskId', ''))[:8]}{title}"
    if not event:
        return "[system]"
    return f"[system] {event}: {json.dumps(data, sort_keys=True)}" if data else f"[system] {event}"
