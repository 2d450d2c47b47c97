"""`/api/v1/`: the bearer-key JSON API."""

from __future__ import annotations

from django.urls import path, re_path

from meshes.api import openapi, topics, views

app_name = "api"
urlpatterns = [
    path("me", views.me, name="me"),
    path("members", views.members, name="members"),
    path("invites", views.invites, name="invites"),
    path("invites/<str:invite_id>/revoke", views.invite_revoke, name="invite-revoke"),
    path("api-keys", views.api_keys, name="api-keys"),
    path("api-keys/revoke", views.api_key_revoke, name="api-key-revoke"),
    path("peers", topics.peers, name="peers"),
    path("schema", openapi.schema, name="schema"),
    path("docs", openapi.docs_page, name="docs"),
    path("topics", topics.topics, name="topics"),
    # Anything else under /api/v1/ answers in JSON too, not with the HTML 404 page.
    re_path(r"^(?P<unmatched>.*)$", views.not_found),
]
