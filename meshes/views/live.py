"""The "online now" region of the mesh page. The broker app owns presence; until it exposes
`broker.selectors.online_peers(mesh_id=...)` the region renders a placeholder and does not poll.
"""

from __future__ import annotations

import importlib

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from meshes.views.common import mesh_view

LIVE_POLL_SECONDS = 5


def online_peers_or_none(mesh_id: str) -> list | None:
    """The broker's live peers for the mesh, or None when the broker does not provide them (yet)."""
    try:
        broker_selectors = importlib.import_module("broker.selectors")
    except ImportError:
        return None
    online_peers = getattr(broker_selectors, "online_peers", None)
    if online_peers is None:
        return None
    return list(online_peers(mesh_id=mesh_id))


def live_context(mesh_id: str) -> dict:
    return {"online_peers": online_peers_or_none(mesh_id), "live_poll_seconds": LIVE_POLL_SECONDS}


@mesh_view
def mesh_live(request: HttpRequest, actor) -> HttpResponse:
    """The region alone, for the page's 5-second refresh."""
    return render(request, "dashboard/_live.html", {"mesh": actor.mesh, **live_context(actor.mesh.id)})
