"""Reads about who is online. `peers_list` is the wire view; `online_peers` is for the dashboard."""

from __future__ import annotations

from typing import Any

from broker.models import Presence
from broker.services.presence import live_presences
from meshes.models import Member
from protocol.encoding import iso_ms


def peers_list(*, mesh_id: str, viewer_member_pubkey: str) -> list[dict[str, Any]]:
    """Live peers of the mesh incl. the viewer, oldest first; hidden ones only for their own member (§4.2)."""
    peers = []
    for p in live_presences().filter(mesh_id=mesh_id).order_by("connected_at", "id"):
        if not p.visible and p.member_pubkey != viewer_member_pubkey:
            continue
        peers.append(peer_entry(p))
    return peers


def peer_entry(p: Presence) -> dict[str, Any]:
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


def members_list(*, mesh_id: str) -> list[dict[str, Any]]:
    """Every live member with an ed25519 key, online or not (wire extension `list_members`)."""
    return [
        {
            "memberId": m.id,
            "pubkey": m.pubkey,
            "displayName": m.display_name,
            "role": m.wire_role,
            "groups": m.default_groups or [],
        }
        for m in Member.objects.filter(mesh_id=mesh_id, revoked_at=None, pubkey__isnull=False).order_by("joined_at")
    ]
