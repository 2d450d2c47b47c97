"""The mesh page's "online now" region: a placeholder without the broker, a self-refreshing list with it."""

from __future__ import annotations

import pytest
from django.urls import reverse
from django.utils import timezone

pytestmark = pytest.mark.django_db


def test_placeholder_without_presence(owner_client, mesh):
    page = owner_client.get(reverse("dashboard:mesh", args=[mesh.id])).content.decode()
    assert 'id="live-region"' in page and "data-live-url" not in page


def test_peers_render_and_refresh(owner_client, mesh, monkeypatch):
    peers = [{"name": "laptop-claude", "status": "working", "visible": True, "connectedAt": timezone.now()}]
    monkeypatch.setattr("meshes.views.live.online_peers_or_none", lambda mesh_id: peers)
    page = owner_client.get(reverse("dashboard:mesh", args=[mesh.id])).content.decode()
    live_url = reverse("dashboard:mesh_live", args=[mesh.id])
    assert f'data-live-url="{live_url}"' in page and "laptop-claude" in page
    fragment = owner_client.get(live_url).content.decode()
    assert fragment.lstrip().startswith("<section") and "laptop-claude" in fragment and "working" in fragment


def test_real_broker_selector_when_present(owner_client, mesh, monkeypatch):
    """Wired to broker.selectors.online_peers: an empty mesh renders "No peer is connected"."""
    broker_selectors = pytest.importorskip("broker.selectors")
    if not hasattr(broker_selectors, "online_peers"):
        pytest.skip("broker.selectors.online_peers not there yet")
    from meshes.views import live

    monkeypatch.undo()  # drop the autouse stand-in
    assert live.online_peers_or_none(mesh.id) == []
    assert "No peer is connected" in owner_client.get(reverse("dashboard:mesh_live", args=[mesh.id])).content.decode()
