"""Frame shapes the broker writes (protocol.md §1.4, §3.8–3.10). Pure functions, no I/O."""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Any

from django.utils import timezone

from protocol.encoding import iso_ms

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


def send_ack(send_id: str, message_id: str = "", error_text: str | None = None) -> dict[str, Any]:
    frame: dict[str, Any] = {"type": "ack", "id": send_id, "messageId": message_id, "queued": error_text is None}
    if error_text is not None:
        frame["error"] = error_text
    return frame


def request_ack(request: dict[str, Any]) -> dict[str, Any]:
    """`set_visible` / `set_profile` reply: an ack with queued:false and no error (§3.10)."""
    req_id = request.get("_reqId")
    frame = {"type": "ack", "id": req_id if isinstance(req_id, str) else "", "messageId": "", "queued": False}
    return with_req_id(frame, request)


def push(
    *,
    message_id: str,
    mesh_id: str,
    sender_pubkey: str,
    priority: str,
    nonce: str,
    ciphertext: str,
    created_at: datetime,
) -> dict[str, Any]:
    return {
        "type": "push",
        "messageId": message_id,
        "meshId": mesh_id,
        "senderPubkey": sender_pubkey,
        "priority": priority,
        "nonce": nonce,
        "ciphertext": ciphertext,
        "createdAt": iso_ms(created_at),
    }


def system_push(mesh_id: str, event: str, event_data: dict[str, Any], priority: str = "low") -> dict[str, Any]:
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


def iso_or_none(moment: datetime | None) -> str | None:
    return iso_ms(moment) if moment else None
