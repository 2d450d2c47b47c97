from django.urls import include, path

from meshes.views import audit, coordination, home, invites, keys, live, mesh, moderation, terminals, topics, webhooks

urlpatterns: list = [
    # JSON API and public/broker HTTP routes (meshes/api); dashboard routes follow.
    path("api/v1/", include("meshes.api.urls")),
    path("", include("meshes.api.public_urls")),
]

# --- dashboard (server-rendered pages; namespace "dashboard") ---------------------------------------------
dashboard_patterns = [
    path("", home.home, name="home"),
    path("meshes/", home.mesh_list, name="mesh_list"),
    path("meshes/new/", home.mesh_create, name="mesh_create"),
    path("meshes/<str:mesh_id>/", mesh.mesh_detail, name="mesh"),
    path("meshes/<str:mesh_id>/live/", live.mesh_live, name="mesh_live"),
    path("meshes/<str:mesh_id>/live.json", live.mesh_live, {"as_json": True}, name="mesh_live_json"),
    path("meshes/<str:mesh_id>/members/<str:member_id>/role/", mesh.member_role, name="member_role"),
    path("meshes/<str:mesh_id>/members/<str:member_id>/remove/", mesh.member_remove, name="member_remove"),
    path("meshes/<str:mesh_id>/members/<str:member_id>/rename/", mesh.member_rename, name="member_rename"),
    path("meshes/<str:mesh_id>/cli-link/", mesh.cli_link_create, name="cli_link"),
    path("meshes/<str:mesh_id>/invites/", invites.invite_list, name="invites"),
    path("meshes/<str:mesh_id>/invites/new/", invites.invite_create, name="invite_create"),
    path("meshes/<str:mesh_id>/invites/<str:invite_id>/", invites.invite_detail, name="invite"),
    path("meshes/<str:mesh_id>/invites/<str:invite_id>/revoke/", invites.invite_revoke, name="invite_revoke"),
    path("meshes/<str:mesh_id>/keys/", keys.api_key_list, name="api_keys"),
    path("meshes/<str:mesh_id>/keys/new/", keys.api_key_create, name="api_key_create"),
    path("meshes/<str:mesh_id>/keys/created/", keys.api_key_created, name="api_key_created"),
    path("meshes/<str:mesh_id>/keys/revoke/", keys.api_key_revoke, name="api_key_revoke"),
    path("meshes/<str:mesh_id>/topics/", topics.topic_list, name="topics"),
    path("meshes/<str:mesh_id>/coordination/", coordination.coordination, name="coordination"),
    path("meshes/<str:mesh_id>/moderation/", moderation.moderation, name="moderation"),
    path("meshes/<str:mesh_id>/moderation/sessions/<str:presence_id>/close/", moderation.session_close, name="session_close"),
    path("meshes/<str:mesh_id>/moderation/members/<str:member_id>/ban/", moderation.member_ban_view, name="member_ban"),
    path("meshes/<str:mesh_id>/moderation/members/<str:member_id>/unban/", moderation.member_unban_view, name="member_unban"),
    path("meshes/<str:mesh_id>/moderation/members/<str:member_id>/grants/", moderation.member_grants, name="member_grants"),
    path("meshes/<str:mesh_id>/webhooks/", webhooks.webhook_list, name="webhooks"),
    path("meshes/<str:mesh_id>/webhooks/new/", webhooks.webhook_create_view, name="webhook_create"),
    path("meshes/<str:mesh_id>/webhooks/<str:name>/revoke/", webhooks.webhook_delete_view, name="webhook_delete"),
    path("meshes/<str:mesh_id>/topics/<str:topic_id>/", topics.topic_detail, name="topic"),
    path("meshes/<str:mesh_id>/topics/<str:topic_id>/members/add/", topics.topic_member_add, name="topic_member_add"),
    path("meshes/<str:mesh_id>/topics/<str:topic_id>/members/<str:member_id>/remove/", topics.topic_member_remove,
         name="topic_member_remove"),
    path("meshes/<str:mesh_id>/audit/", audit.audit_log, name="audit"),
    path("meshes/<str:mesh_id>/audit/export.csv", audit.audit_export, {"fmt": "csv"}, name="audit_export_csv"),
    path("meshes/<str:mesh_id>/audit/export.json", audit.audit_export, {"fmt": "json"}, name="audit_export_json"),
    path("meshes/<str:mesh_id>/settings/", mesh.mesh_settings, name="mesh_settings"),
    path("meshes/<str:mesh_id>/settings/rename/", mesh.mesh_rename, name="mesh_rename"),
    path("meshes/<str:mesh_id>/settings/archive/", mesh.mesh_archive, name="mesh_archive"),
    path("cli-auth", terminals.cli_auth, name="cli_auth"),
    path("token", terminals.paste_token, name="cli_token"),
    path("account/terminals/", terminals.terminal_list, name="terminals"),
    path("account/terminals/<str:session_id>/revoke/", terminals.terminal_revoke, name="terminal_revoke"),
    # Public: where invite links land.
    path("i/<str:code>", invites.invite_landing, name="invite_landing"),
    path("i/<str:code>/join", invites.invite_accept, name="invite_accept"),
    path("join/<str:token>", invites.join_landing, name="join_landing"),
]

urlpatterns += [path("", include((dashboard_patterns, "dashboard")))]
