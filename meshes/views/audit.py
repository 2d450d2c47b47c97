"""The mesh's audit log, newest first, under a banner saying whether its hash chain verifies."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from meshes import selectors
from meshes.audit import audit_verify
from meshes.views.common import mesh_context, mesh_view


@mesh_view
def audit_log(request: HttpRequest, actor) -> HttpResponse:
    page = selectors.audit_page(actor=actor, page_number=request.GET.get("page"))
    # Newest first; number events by their place in the chain so "broken at event N" can be found here.
    newest_position = page.paginator.count - page.start_index() + 1
    context = {
        **mesh_context(actor, tab="audit"),
        "verdict": audit_verify(mesh_id=actor.mesh.id),
        "page": page,
        "numbered_events": [(newest_position - offset, event) for offset, event in enumerate(page.object_list)],
    }
    return render(request, "dashboard/audit.html", context)
