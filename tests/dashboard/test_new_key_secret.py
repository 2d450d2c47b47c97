"""A new API key's secret is never in the session store: it waits, sealed, in the cache for its one page view
(at most ten minutes) and is gone after it."""

from __future__ import annotations

import re

import pytest
from django.contrib.sessions.models import Session
from django.core.cache import cache
from django.urls import reverse

pytestmark = pytest.mark.django_db

SECRET = re.compile(r"cm_[A-Za-z0-9_-]{43}")


def test_a_new_api_key_secret_waits_sealed_outside_the_session(owner_client, mesh):
    response = owner_client.post(
        reverse("dashboard:api_key_create", args=[mesh.id]), {"label": "bot", "capabilities": ["read"]}
    )
    assert response.status_code == 302
    sessions = " ".join(s.session_data + repr(s.get_decoded()) for s in Session.objects.all())
    waiting = cache.get(f"dashboard:new-api-key:{owner_client.session.session_key}:{mesh.id}")
    page = owner_client.get(response.url).content.decode()
    secret = SECRET.search(page).group(0)
    assert secret[3:] not in sessions
    assert waiting and secret[3:] not in waiting  # sealed while it waits
    assert cache.get(f"dashboard:new-api-key:{owner_client.session.session_key}:{mesh.id}") is None
    assert SECRET.search(owner_client.get(response.url).content.decode()) is None  # shown once
