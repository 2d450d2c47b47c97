"""A mesh's topics from this peer (protocol.md §5.1): find one by `#name` or id, list, create, join, leave,
members, mark read, and read its history, every message opened with the keyring (docs/encryption.md)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from peer.targets import TargetError

HISTORY_PAGE = 200


class TopicNotFound(TargetError):
    def __init__(self, ref: str, known: list[str]):
        listed = ", ".join(f"#{name}" for name in known) or "none"
        super().__init__(f'topic "{ref}" not found. topics: {listed}', "not_found")


def _bare(ref: str) -> str:
    """A topic as the broker takes it: name or id, without the `#`."""
    return ref.strip().lstrip("#")


class Topics:
    """`request` is the connection's; `open_message` and `sender_name` are the client's (how any message is opened
    and its sender named), so a history page reads exactly as pushed messages do."""

    def __init__(self, *, request: Callable[..., Awaitable[dict[str, Any]]], open_message: Callable[..., Awaitable[Any]],
                 sender_name: Callable[[str, Any], Awaitable[str]]):
        self._request = request
        self._open_message = open_message
        self._sender_name = sender_name
        self._names: dict[str, str] = {}  # topic id → name, learnt from every list

    async def list(self) -> list[dict[str, Any]]:
        reply = await self._request({"type": "topic_list"}, "topic_list_response")
        topics = [t for t in reply.get("topics") or [] if isinstance(t, dict)]
        self._names.update({str(t["id"]): str(t["name"]) for t in topics if t.get("id") and t.get("name")})
        return topics

    async def find(self, ref: str) -> dict[str, Any]:
        """A topic by `#name`, name or id (client.md §1.4: `#name` is resolved with `topic_list`)."""
        wanted = _bare(ref)
        topics = await self.list()
        for topic in topics:
            if topic.get("id") == wanted or str(topic.get("name", "")).lower() == wanted.lower():
                return topic
        raise TopicNotFound(wanted, [str(t.get("name")) for t in topics])

    async def name_of(self, topic_id: str) -> str:
        if topic_id not in self._names:
            try:
                await self.list()
            except Exception:  # naming is best effort: the message is kept whatever its label
                return topic_id[:8]
        return self._names.get(topic_id, topic_id[:8])

    async def create(self, name: str, *, description: str | None = None, visibility: str | None = None) -> dict:
        frame: dict[str, Any] = {"type": "topic_create", "name": name}
        if description:
            frame["description"] = description
        if visibility:
            frame["visibility"] = visibility
        reply = await self._request(frame, "topic_created")
        topic = reply.get("topic") or {}
        self._names[str(topic.get("id"))] = str(topic.get("name"))
        return reply

    async def join(self, ref: str, *, role: str | None = None) -> dict:
        frame: dict[str, Any] = {"type": "topic_join", "topic": _bare(ref)}
        if role:
            frame["role"] = role
        return await self._request(frame, "topic_joined")

    async def leave(self, ref: str) -> dict:
        return await self._request({"type": "topic_leave", "topic": _bare(ref)}, "topic_left")

    async def mark_read(self, ref: str) -> dict:
        return await self._request({"type": "topic_mark_read", "topic": _bare(ref)}, "topic_marked_read")

    async def members(self, ref: str) -> list[dict[str, Any]]:
        reply = await self._request({"type": "topic_members", "topic": _bare(ref)}, "topic_members_response")
        return [m for m in reply.get("members") or [] if isinstance(m, dict)]

    async def member_keys(self, topic_id: str) -> dict[str, str]:
        """member id → pubkey of the topic's subscribers (who its key is for)."""
        return {str(m["memberId"]): str(m["pubkey"]) for m in await self.members(topic_id) if m.get("pubkey")}

    async def history(self, ref: str, *, limit: int = 50, before: str | None = None) -> dict[str, Any]:
        """A page of history, newest first, each message opened (or saying why not) with its sender's name."""
        frame: dict[str, Any] = {"type": "topic_history", "topic": _bare(ref), "limit": limit}
        if before:
            frame["beforeId"] = before
        reply = await self._request(frame, "topic_history_response")
        topic_id = str(reply.get("topicId") or "")
        messages = []
        for raw in reply.get("messages") or []:
            if not isinstance(raw, dict):
                continue
            opened = await self._open_message(
                sender_pubkey=str(raw.get("senderPubkey") or ""), nonce=str(raw.get("nonce") or ""),
                ciphertext=str(raw.get("ciphertext") or ""), sender_member_id=raw.get("senderMemberId"),
                target_spec=f"#{topic_id}" if topic_id else None,
            )
            messages.append({
                "id": raw.get("id"),
                "createdAt": raw.get("createdAt"),
                "senderMemberId": raw.get("senderMemberId"),
                "senderName": await self._sender_name(str(raw.get("senderPubkey") or ""), raw.get("senderMemberId")),
                "kind": opened.kind,
                "encrypted": opened.encrypted,
                "text": opened.plaintext,
                "failure": opened.failure,
            })
        return {"topicId": topic_id, "topic": reply.get("topicName") or ref, "messages": messages}
