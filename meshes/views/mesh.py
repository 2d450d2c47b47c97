"""The mesh page (members, online now), member changes and mesh settings (rename, archive)."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from meshes import selectors, services
from meshes.errors import ServiceError
from meshes.forms import ArchiveConfirmForm, MemberNameForm, MemberRoleForm, MeshNameForm
from meshes.views.common import attach_error, error_status, mesh_context, mesh_view, post_only
from meshes.views.live import live_context


def _mesh_page(request: HttpRequest, actor, *, member_errors: dict | None = None, status: int = 200) -> HttpResponse:
    context = {
        **mesh_context(actor, tab="members"),
        **live_context(actor.mesh.id),
        "members": selectors.members_for_mesh(mesh=actor.mesh),
        "member_errors": member_errors or {},
    }
    return render(request, "dashboard/mesh_detail.html", context, status=status)


@mesh_view
def mesh_detail(request: HttpRequest, actor) -> HttpResponse:
    return _mesh_page(request, actor)


@mesh_view
@post_only("dashboard:mesh")
def member_role(request: HttpRequest, actor, member_id: str) -> HttpResponse:
    form = MemberRoleForm(request.POST)
    if not form.is_valid():
        return _mesh_page(request, actor, member_errors={member_id: "choose admin or member"}, status=400)
    try:
        member = services.member_set_role(actor=actor, member_id=member_id, role=form.cleaned_data["role"])
    except ServiceError as error:
        return _mesh_page(request, actor, member_errors={member_id: error.message}, status=error_status(error))
    messages.success(request, f"{member.display_name} is now {member.get_role_display().lower()}.")
    return redirect("dashboard:mesh", mesh_id=actor.mesh.id)


@mesh_view
@post_only("dashboard:mesh")
def member_rename(request: HttpRequest, actor, member_id: str) -> HttpResponse:
    form = MemberNameForm(request.POST)
    if not form.is_valid():
        return _mesh_page(request, actor, member_errors={member_id: "give a name of 1–100 characters"}, status=400)
    try:
        member = services.member_rename(actor=actor, member_id=member_id, name=form.cleaned_data["name"])
    except ServiceError as error:
        return _mesh_page(request, actor, member_errors={member_id: error.message}, status=error_status(error))
    messages.success(request, f"Renamed to “{member.display_name}”; peers address them by this name.")
    return redirect("dashboard:mesh", mesh_id=actor.mesh.id)


@mesh_view
@post_only("dashboard:mesh")
def cli_link_create(request: HttpRequest, actor) -> HttpResponse:
    try:
        invite = services.invite_create_cli_link(actor=actor)
    except ServiceError as error:
        messages.error(request, error.message)
        return _mesh_page(request, actor, status=error_status(error))
    context = {**mesh_context(actor, tab="members"), "invite": invite, "links": selectors.invite_links(invite=invite)}
    return render(request, "dashboard/cli_link.html", context)


@mesh_view
@post_only("dashboard:mesh")
def member_remove(request: HttpRequest, actor, member_id: str) -> HttpResponse:
    try:
        member = services.member_remove(actor=actor, member_id=member_id)
    except ServiceError as error:
        return _mesh_page(request, actor, member_errors={member_id: error.message}, status=error_status(error))
    messages.success(request, f"{member.display_name} was removed from the mesh.")
    return redirect("dashboard:mesh", mesh_id=actor.mesh.id)


def _settings_page(request, actor, *, rename_form=None, archive_form=None, status: int = 200) -> HttpResponse:
    actor.require_manager()  # nothing on it a plain member may do
    context = {
        **mesh_context(actor, tab="settings"),
        "rename_form": rename_form or MeshNameForm(initial={"name": actor.mesh.name}),
        "archive_form": archive_form or ArchiveConfirmForm(mesh_name=actor.mesh.name),
    }
    return render(request, "dashboard/mesh_settings.html", context, status=status)


@mesh_view
def mesh_settings(request: HttpRequest, actor) -> HttpResponse:
    return _settings_page(request, actor)


@mesh_view
@post_only("dashboard:mesh_settings")
def mesh_rename(request: HttpRequest, actor) -> HttpResponse:
    form = MeshNameForm(request.POST)
    if not form.is_valid():
        return _settings_page(request, actor, rename_form=form, status=400)
    try:
        mesh = services.mesh_rename(actor=actor, name=form.cleaned_data["name"])
    except ServiceError as error:
        attach_error(form, error, field="name")
        return _settings_page(request, actor, rename_form=form, status=error_status(error))
    messages.success(request, f"Renamed to “{mesh.name}”.")
    return redirect("dashboard:mesh_settings", mesh_id=mesh.id)


@mesh_view
@post_only("dashboard:mesh_settings")
def mesh_archive(request: HttpRequest, actor) -> HttpResponse:
    form = ArchiveConfirmForm(request.POST, mesh_name=actor.mesh.name)
    if not form.is_valid():
        return _settings_page(request, actor, archive_form=form, status=400)
    try:
        services.mesh_archive(actor=actor)
    except ServiceError as error:
        attach_error(form, error)
        return _settings_page(request, actor, archive_form=form, status=error_status(error))
    messages.success(request, f"“{actor.mesh.name}” is archived. Its peers have been disconnected.")
    return redirect("dashboard:mesh", mesh_id=actor.mesh.id)
