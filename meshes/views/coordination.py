"""The coordination tab: tasks by status with assignee and age, scheduled messages with their next fire time,
shared state keys with writer and time, and how many memories there are. Metadata only: titles, values, memories
and reminder texts written by our clients are sealed, and this server cannot read them."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone

from meshes import selectors_coordination
from meshes.views.common import mesh_context, mesh_view


@mesh_view
def coordination(request: HttpRequest, actor) -> HttpResponse:
    overview = selectors_coordination.coordination_overview(mesh_id=actor.mesh.id, now=timezone.now())
    return render(request, "dashboard/coordination.html", {**mesh_context(actor, tab="coordination"), "o": overview})
