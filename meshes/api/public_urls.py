"""Public and broker HTTP routes: v1 enrollment, v2 claims, short-code lookup and invite preview."""

from __future__ import annotations

app_name = "public_api"
urlpatterns: list = []
