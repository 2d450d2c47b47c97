"""Reads about who is online and what became of a message. Selectors return rows; `broker.wire` renders them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from broker.models import Delivery, Message, PeerState, Presence
from broker.services.liveness import live_presences
from meshes.models import Member
from meshes.selectors import id_for_ref


def peers_list(*, mesh_id: str, viewer_member_pubkey: str) -> list[Presence]:
    """Live peers of the mesh incl. the viewer, oldest first; hidden ones only for their own member (§4.2)."""
    return [
        p
        for p in live_presences().filter(mesh_id=mesh_id).order_by("connected_at", "id")
        if p.visible or p.member_pubkey == viewer_member_pubkey
    ]


def live_in_mesh(*, mesh_id: str) -> list[Presence]:
    """Every live connection of the mesh, hidden ones too (`mesh_info` counts them, §5.6)."""
    return list(live_presences().filter(mesh_id=mesh_id).order_by("connected_at", "id"))


def online_peers(*, mesh_id: str) -> list[dict[str, Any]]:
    """Dashboard live view: who is connected right now (every worker), oldest first."""
    return [
        {
            "presenceId": p.id,
            "memberId": p.member_id,
            "name": p.display_name,
            "pubkey": p.routing_pubkey,
            "memberPubkey": p.member_pubkey,
            "status": p.status,
            "summary": p.summary,
            "groups": p.groups or [],
            "visible": p.visible,
            "connectedAt": p.connected_at,
        }
        for p in live_presences().filter(mesh_id=mesh_id).order_by("connected_at", "id")
    ]


def member_groups(*, mesh_id: str, member_id: str, extra: list[Any] = ()) -> list[str]:
    """Every group a member is in as far as the broker knows: its live sessions', its saved state's, its default
    ones (a one-shot CLI connection announces none, yet its member is in them)."""
    sources = [list(extra)]
    sources += list(live_presences().filter(mesh_id=mesh_id, member_id=member_id).values_list("groups", flat=True))
    sources += list(PeerState.objects.filter(mesh_id=mesh_id, member_id=member_id).values_list("groups", flat=True))
    sources += list(Member.objects.filter(pk=member_id).values_list("default_groups", flat=True))
    names = {str(g["name"]) for groups in sources if isinstance(groups, list) for g in groups
             if isinstance(g, dict) and isinstance(g.get("name"), str) and g["name"]}
    return sorted(names)


@dataclass(frozen=True)
class MemberRoster:
    members: list[Member]
    online: set[str]  # member ids with a live connection
    last_seen: dict[str, datetime]  # member id → when its last connection ended


def members_list(*, mesh_id: str) -> MemberRoster:
    """Every live member with an ed25519 key, online or not, and when each was last seen (`list_members`)."""
    members = list(Member.objects.filter(mesh_id=mesh_id, revoked_at=None, pubkey__isnull=False).order_by("joined_at"))
    online = set(live_presences().filter(mesh_id=mesh_id).values_list("member_id", flat=True))
    last_seen = dict(PeerState.objects.filter(mesh_id=mesh_id).values_list("member_id", "last_seen_at"))
    return MemberRoster(members, online, last_seen)


@dataclass(frozen=True)
class MessageStatus:
    message: Message
    deliveries: list[Delivery]  # with their recipient members
    delivered: bool  # every row is (a message with no row is not)
    delivered_at: datetime | None  # when the last row was delivered, once every row is


def message_id_for_ref(*, mesh_id: str, message_ref: Any) -> str | None:
    """This mesh's message that `message_ref` names (a full id or a unique prefix, as the CLI prints them)."""
    return id_for_ref(rows=Message.objects.filter(mesh_id=mesh_id), ref=message_ref, plural="messages")


def message_status(*, mesh_id: str, message_id: Any) -> MessageStatus | None:
    """What became of a message of this mesh (§3.11), or None when the mesh has no such message."""
    if not isinstance(message_id, str):
        return None
    message = Message.objects.filter(pk=message_id, mesh_id=mesh_id).first()
    if message is None:
        return None
    rows = list(Delivery.objects.filter(message=message).select_related("recipient_member").order_by("id"))
    delivered = bool(rows) and all(row.is_delivered for row in rows)
    delivered_at = max((row.delivered_at for row in rows if row.delivered_at), default=None) if delivered else None
    return MessageStatus(message, rows, delivered, delivered_at)
