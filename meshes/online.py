"""Who is online in a mesh, and closing one of those sessions. The broker owns presence and provides both at
start-up (`BrokerConfig.ready`); meshes/ only asks, so it never imports the broker."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

OnlinePeers = Callable[..., list[dict[str, Any]]]  # online_peers(mesh_id=...) → peers, oldest first
_provider: OnlinePeers | None = None


def provide_online_peers(provider: OnlinePeers) -> None:
    global _provider
    _provider = provider


def online_peers(*, mesh_id: str) -> list[dict[str, Any]] | None:
    """The mesh's connected peers, or None when no broker provides presence in this project."""
    if _provider is None:
        return None
    return list(_provider(mesh_id=mesh_id))


SessionKick = Callable[..., list[str]]  # kick_session(actor=..., presence_id=..., disconnect=...) → names closed
_kicker: SessionKick | None = None


def provide_session_kick(kicker: SessionKick) -> None:
    global _kicker
    _kicker = kicker


def kick_session(*, actor: Any, presence_id: str, disconnect: bool = False) -> list[str]:
    """Close one connection of the actor's mesh (owners and admins): kicked sessions stay out, disconnected ones
    may reconnect. The names closed; [] when no broker runs in this project or the session is gone."""
    if _kicker is None:
        return []
    return list(_kicker(actor=actor, presence_id=presence_id, disconnect=disconnect))
