"""Who is online in a mesh. The broker owns presence and provides this read at start-up
(`BrokerConfig.ready`); meshes/ only asks, so it never imports the broker."""

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
