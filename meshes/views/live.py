"""The mesh page's "online now" region and its JSON twin: one view, rendered as the HTML fragment the page
re-fetches every few seconds or as `live.json`. Members only; presence comes from `meshes.online`."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render

from meshes import online
from meshes.views.common import mesh_view
from protocol.encoding import iso_or_none

LIVE_POLL_SECONDS = 5


def online_peers_or_none(mesh_id: str) -> list | None:
    """The broker's live peers for the mesh, or None when no broker provides them."""
    return online.online_peers(mesh_id=mesh_id)


def live_context(mesh_id: str) -> dict:
    return {"online_peers": online_peers_or_none(mesh_id), "live_poll_seconds": LIVE_POLL_SECONDS}


@mesh_view
def mesh_live(request: HttpRequest, actor, *, as_json: bool = False) -> HttpResponse:
    context = live_context(actor.mesh.id)
    if as_json:
        peers = [{**peer, "connectedAt": iso_or_none(peer.get("connectedAt"))} for peer in context["online_peers"] or []]
        return JsonResponse({"meshId": actor.mesh.id, "peers": peers})
    return render(request, "dashboard/_live.html", {"mesh": actor.mesh, **context})
