"""Every frame shape the broker writes (protocol.md §1.4, §2.5, §3.8–3.11, §4.2, §5.2). Pure functions of
rows and values, no I/O: a wire shape is built in exactly one place."""

from __future__ import annotations

import json
import uuid
from typing import Any

from django.utils import timezone

from broker.presence_fields import clean_groups, stats_restored
from meshes.wire import api_key_entry, api_key_revoke_body
from protocol.encoding import iso_ms, iso_or_none
from protocol.vocabulary import DEFAULT_GRANTS, WEBHOOK_SENDER_PREFIX, Priority, PushSubtype, is_direct_target

SELF_EDITABLE = {"displayName": True, "roleTag": True, "groups": True, "messageMode": True}

# One encoder for every frame: json.dumps with non-default options builds a new encoder on each call.
_encode = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


def dumps(frame: dict[str, Any]) -> str:
    text = _encode(frame)
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate echoed from a request: escape it, text frames must be UTF-8
            text = json.dumps(frame, separators=(",", ":"))
    return text


def with_req_id(frame: dict[str, Any], request: dict[str, Any]) -> dict[str, Any]:
    """Echo `_reqId` when the request carried one; omit the key otherwise (§1.3)."""
    req_id = request.get("_reqId")
    if isinstance(req_id, str):
        frame["_reqId"] = req_id
    return frame


def error(code: str, message: str, request: dict[str, Any] | None = None) -> dict[str, Any]:
    frame = {"type": "error", "code": code, "message": message}
    return with_req_id(frame, request) if request is not None else frame


MAX_ACK_RECIPIENTS = 100


def send_ack(send_id: str, message_id: str = "", error_text: str | None = None, *, reach: Any = None) -> dict[str, Any]:
    """§3.3 `ack`; an accepted send's ack also says, per recipient member, what happened to it (additive,
    docs/wire-extensions.md): `reach` counts, `recipients` (the first 100 by name), `sessionEnded`, `queueFull`."""
    frame: dict[str, Any] = {"type": "ack", "id": send_id, "messageId": message_id, "queued": error_text is None}
    if error_text is not None:
        frame["error"] = error_text
    if reach is None or error_text is not None:
        return frame
    counts = {"live": 0, "held": 0, "queued": 0, "queue_full": 0}
    for _, state in reach.recipients.values():
        counts[state] += 1
    if counts["queue_full"]:  # members this multicast did not queue for
        frame["queueFull"] = counts["queue_full"]
    frame["reach"] = {"live": counts["live"], "held": counts["held"], "queued": counts["queued"]}
    recipients = sorted(reach.recipients.items(), key=lambda item: (item[1][0].lower(), item[0]))
    frame["recipients"] = [
        {"memberId": member_id, "name": name, "state": state} for member_id, (name, state) in recipients
    ][:MAX_ACK_RECIPIENTS]
    if reach.session_ended:
        frame["sessionEnded"] = True
    return frame


def request_ack(request: dict[str, Any]) -> dict[str, Any]:
    """`set_visible` / `set_profile` reply: an ack with queued:false and no error (§3.10)."""
    req_id = request.get("_reqId")
    frame = {"type": "ack", "id": req_id if isinstance(req_id, str) else "", "messageId": "", "queued": False}
    return with_req_id(frame, request)


def system_push(mesh_id: str, event: str, event_data: dict[str, Any], priority: str = Priority.LOW) -> dict[str, Any]:
    return {
        "type": "push",
        "messageId": str(uuid.uuid4()),
        "meshId": mesh_id,
        "senderPubkey": "system",
        "priority": priority,
        "nonce": "",
        "ciphertext": "",
        "createdAt": iso_ms(timezone.now()),
        "subtype": "system",
        "event": event,
        "eventData": {key: value for key, value in event_data.items() if value is not None},
    }


def message_push(message: Any) -> dict[str, Any]:
    """The `push` a recipient gets for a stored message (a row or a model instance): every delivery path (§3.8).
    A multicast or topic push also says where it was sent (additive `targetSpec`: `*`, `@group`, `#<topicId>`)."""
    frame = {
        "type": "push",
        "messageId": message.id,
        "meshId": message.mesh_id,
        "senderPubkey": message.sender_pubkey,
        "senderMemberId": message.sender_member_id,  # additive: the person, whatever session sent it
        "priority": message.priority,
        "nonce": message.nonce,
        "ciphertext": message.ciphertext,
        "createdAt": iso_ms(message.created_at),
    }
    if not is_direct_target(message.target_spec):
        frame["targetSpec"] = message.target_spec
    if message.subtype:
        frame["subtype"] = message.subtype
    if message.subtype == PushSubtype.WEBHOOK:
        return _webhook_push(frame, message)
    return frame


def _webhook_push(frame: dict[str, Any], message: Any) -> dict[str, Any]:
    """§6.9: plaintext by nature, the body as `eventData`, the webhook's name as `event`; stored as the text of
    the message, so queued deliveries look exactly like live ones."""
    frame.pop("senderMemberId", None)
    frame.pop("targetSpec", None)
    frame.update(event=message.sender_pubkey.removeprefix(WEBHOOK_SENDER_PREFIX), eventData=json.loads(message.ciphertext),
                 nonce="", ciphertext="")
    return frame


def hello_ack(*, presence: Any, member: Any, saved: Any | None, hello_groups: list[dict[str, str]]) -> dict[str, Any]:
    """§2.5: the new presence, the member's profile, and what a returning member's saved state restores."""
    ack: dict[str, Any] = {
        "type": "hello_ack",
        "presenceId": presence.id,
        "memberDisplayName": presence.display_name,
        "memberProfile": {
            "roleTag": member.role_tag or None,
            "groups": clean_groups(member.default_groups),
            "messageMode": member.message_mode or "push",
        },
        "meshPolicy": {"selfEditable": dict(SELF_EDITABLE)},
    }
    if saved is not None:
        ack["restored"] = True
        if saved.last_summary:
            ack["lastSummary"] = saved.last_summary
        ack["lastSeenAt"] = iso_or_none(saved.last_seen_at)
        if not hello_groups and saved.groups:
            ack["restoredGroups"] = saved.groups
        ack["restoredStats"] = stats_restored(saved.cumulative_stats)
    ack.update({"services": [], "protocolVersion": 1, "deliveryAck": True})
    return ack


def peer_entry(presence: Any) -> dict[str, Any]:
    """One entry of `peers_list` (§4.2)."""
    p = presence
    entry: dict[str, Any] = {
        "pubkey": p.routing_pubkey,
        "memberPubkey": p.member_pubkey,
        "displayName": p.display_name,
        "status": p.status,
        "summary": p.summary,
        "groups": p.groups or [],
        "sessionId": p.session_id,
        "connectedAt": iso_ms(p.connected_at),
        "cwd": p.cwd,
    }
    for key, value in (("hostname", p.hostname), ("peerType", p.peer_type), ("channel", p.channel), ("model", p.model)):
        if value:
            entry[key] = value
    if p.stats is not None:
        entry["stats"] = p.stats
    entry["visible"] = p.visible
    if p.profile:
        entry["profile"] = p.profile
    return entry


def message_status_result(status: Any) -> dict[str, Any]:
    """§3.11 from a `selectors.MessageStatus`."""
    message, deliveries = status.message, status.deliveries
    recipients = [
        {
            "memberId": row.recipient_member_id,
            "name": row.recipient_member.display_name,
            "pubkey": row.recipient_session
            if row.recipient_session and not row.recipient_session.startswith("sid:")
            else (row.recipient_member.pubkey or ""),
            "status": "delivered" if row.is_delivered else "held",
        }
        for row in deliveries
    ]
    if not recipients and is_direct_target(message.target_spec):
        recipients = [{"name": "unknown", "pubkey": message.target_spec[:16], "status": "disconnected"}]
    return {
        "type": "message_status_result",
        "messageId": message.id,
        "targetSpec": message.target_spec,
        "delivered": status.delivered,
        "deliveredAt": iso_or_none(status.delivered_at),
        "recipients": recipients,
    }


def peers_list(presences: list[Any]) -> dict[str, Any]:
    return {"type": "peers_list", "peers": [peer_entry(p) for p in presences]}


def members_list(roster: Any) -> dict[str, Any]:
    """From a `selectors.MemberRoster`: every member, and (additive) whether it is online or when it was last seen."""
    entries = []
    for member in roster.members:
        entry = member_entry(member)
        entry["online"] = member.id in roster.online
        entry["lastSeenAt"] = iso_or_none(roster.last_seen.get(member.id))
        entries.append(entry)
    return {"type": "members_list", "members": entries}


def api_key_created(key: Any, secret: str) -> dict[str, Any]:
    """The only frame that ever carries a key's secret."""
    return {"type": "apikey_created", **api_key_entry(key), "secret": secret}


def api_key_list_response(keys: list[Any]) -> dict[str, Any]:
    return {"type": "apikey_list_response", "keys": [api_key_entry(key) for key in keys]}


def api_key_revoke_response(outcome: Any) -> dict[str, Any]:
    return {"type": "apikey_revoke_response", **api_key_revoke_body(outcome)}


def invite_created(invite: Any, links: dict[str, str]) -> dict[str, Any]:
    return {
        "type": "invite_created",
        "id": invite.id,
        "code": invite.code,
        "token": invite.token,
        "url": links["joinUrl"],
        "shortUrl": links["shortUrl"],
        "expiresAt": iso_ms(invite.expires_at),
    }


def member_entry(member: Any) -> dict[str, Any]:
    """One entry of `members_list` (wire extension `list_members`)."""
    return {
        "memberId": member.id,
        "pubkey": member.pubkey,
        "displayName": member.display_name,
        "role": member.wire_role,
        "groups": member.default_groups or [],
    }


def bans_list(members: list[Any]) -> dict[str, Any]:
    """§5.3 `list_bans_result`: revokedAt in ISO 8601."""
    return {
        "type": "list_bans_result",
        "bans": [{"name": m.display_name, "pubkey": m.pubkey or "", "revokedAt": iso_or_none(m.revoked_at)} for m in members],
    }


def grants_result(member: Any) -> dict[str, Any]:
    grants = member.peer_grants if isinstance(member.peer_grants, dict) else {}
    return {"type": "grants_result", "memberId": member.id, "grants": grants, "defaults": list(DEFAULT_GRANTS)}
