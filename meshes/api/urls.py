"""`/api/v1/`: the bearer-key JSON API."""

from __future__ import annotations

app_name = "api"
urlpatterns: list = []
