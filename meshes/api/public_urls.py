"""Public and broker HTTP routes: v1 enrollment, v2 claims, short-code lookup and invite preview.

Exact paths without trailing slashes, as the reference broker and CLI use them.
"""

from __future__ import annotations

from django.urls import path

from meshes.api import files, public

app_name = "public_api"
urlpatterns = [
    path("join", public.join, name="join"),
    path("invites/<str:code>/claim", public.claim, name="claim"),
    path("api/public/invites/<str:code>/claim", public.claim, name="claim-alias"),
    path("api/public/invite-code/<str:code>", public.invite_code, name="invite-code"),
    path("api/public/invite/<str:token>", public.invite_preview_view, name="invite-preview"),
    path("download/<str:file_id>", files.download, name="file-download"),
]
