"""Landing page, my meshes, create a mesh."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from meshes import selectors, services
from meshes.errors import ServiceError
from meshes.forms import MeshCreateForm
from meshes.views.common import attach_error, error_status


def home(request: HttpRequest) -> HttpResponse:
    if not request.user.is_authenticated:
        return render(request, "dashboard/landing.html")
    return mesh_list(request)


@login_required
def mesh_list(request: HttpRequest) -> HttpResponse:
    meshes = list(selectors.meshes_for_user(user=request.user))
    return render(
        request,
        "dashboard/mesh_list.html",
        {
            "active_meshes": [mesh for mesh in meshes if not mesh.is_archived],
            "archived_meshes": [mesh for mesh in meshes if mesh.is_archived],
        },
    )


@login_required
@require_http_methods(["GET", "POST"])
def mesh_create(request: HttpRequest) -> HttpResponse:
    form = MeshCreateForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            mesh = services.mesh_create(owner=request.user, name=form.cleaned_data["name"])
        except ServiceError as error:
            attach_error(form, error, field="name")
            return render(request, "dashboard/mesh_create.html", {"form": form}, status=error_status(error))
        return redirect("dashboard:mesh", mesh_id=mesh.id)
    status = 400 if request.method == "POST" else 200
    return render(request, "dashboard/mesh_create.html", {"form": form}, status=status)
