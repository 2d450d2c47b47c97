"""The topic frames the broker writes (protocol.md §5.1, with the additive fields of docs/wire-extensions.md).
Pure functions of rows: each shape is built here and nowhere else."""

from __future__ import annotations

from typing import Any

from protocol.encoding import iso_ms, iso_or_none


def topic_ref(topic: Any) -> dict[str, str]:
    return {"id": topic.id, "name": topic.name, "visibility": topic.visibility}


def topic_created(topic: Any, created: bool) -> dict[str, Any]:
    return {"type": "topic_created", "topic": topic_ref(topic), "created": created}


def topic_list_response(listings: list[Any]) -> dict[str, Any]:
    """From `meshes.selectors_topics.TopicListing`s: the §5.1 entry, plus `joined`, `unread`, `lastMessageAt`."""
    return {
        "type": "topic_list_response",
        "topics": [
            {
                "id": item.topic.id,
                "name": item.topic.name,
                "description": item.topic.description,
                "visibility": item.topic.visibility,
                "memberCount": item.member_count,
                "createdAt": iso_ms(item.topic.created_at),
                "joined": item.joined,
                "unread": item.unread,
                "lastMessageAt": iso_or_none(item.last_message_at),
            }
            for item in listings
        ],
    }


def topic_membership(kind: str, topic: Any, **fields: Any) -> dict[str, Any]:
    """Additive replies to join, leave and mark-read (the reference answers nothing when they succeed)."""
    return {"type": kind, "topic": topic_ref(topic), **fields}


def topic_members_response(request_topic: Any, subscriptions: list[Any]) -> dict[str, Any]:
    return {
        "type": "topic_members_response",
        "topic": request_topic,
        "members": [
            {
                "memberId": s.member_id,
                "pubkey": s.member.pubkey or "",
                "displayName": s.member.display_name,
                "role": s.role,
                "joinedAt": iso_ms(s.joined_at),
                "lastReadAt": iso_or_none(s.last_read_at),
            }
            for s in subscriptions
        ],
    }


def topic_history_response(request_topic: Any, topic: Any, messages: list[Any]) -> dict[str, Any]:
    """Newest first, as stored: the ciphertext is whatever the sender sent (CMS1 from our clients)."""
    return {
        "type": "topic_history_response",
        "topic": request_topic,
        "topicId": topic.id,
        "topicName": topic.name,
        "messages": [
            {
                "id": m.id,
                "senderPubkey": m.sender_pubkey,
                "senderMemberId": m.sender_member_id,
                "nonce": m.nonce,
                "ciphertext": m.ciphertext,
                "createdAt": iso_ms(m.created_at),
            }
            for m in messages
        ],
    }
