"""What a signed-in terminal calls (protocol.md §6.6–6.7, client.md Appendix B): included before the CLI
download route, whose `cli/<file>` would otherwise take `cli/meshes` and `cli/device-code`."""

from __future__ import annotations

from django.urls import path

from meshes.api import cli, cli_auth, profile

app_name = "cli_api"
urlpatterns = [
    path("cli/device-code", cli_auth.device_code, name="device-code"),
    path("cli/device-code/<str:device_code>", cli_auth.device_code_poll, name="device-code-poll"),
    path("cli/device-code/<str:code>/approve", cli_auth.device_code_approve, name="device-code-approve"),
    path("cli/session/revoke", cli_auth.session_revoke, name="session-revoke"),
    path("cli/token", cli_auth.token, name="token"),
    path("cli/meshes", cli.meshes, name="meshes"),
    path("cli/mesh/create", cli.mesh_create, name="mesh-create"),
    path("cli/mesh/<str:slug>", cli.mesh_delete, name="mesh-delete"),
    path("cli/mesh/<str:slug>/invite", cli.mesh_invite, name="mesh-invite"),
    path("cli/mesh/<str:slug>/grants", cli.grants, name="grants"),
    path("mesh/<str:mesh_id>/members", profile.members, name="mesh-members"),
    path("mesh/<str:mesh_id>/member/<str:member_id>", profile.member, name="mesh-member"),
    path("api/my/profile", cli.my_profile, name="my-profile"),
    path("api/my/meshes", cli.my_meshes, name="my-meshes"),
    path("api/my/meshes/<str:slug>", cli.my_mesh, name="my-mesh"),
]
