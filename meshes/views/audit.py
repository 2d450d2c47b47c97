"""The mesh's audit log, newest first, under a banner saying whether its hash chain verifies; filtered by event
type and actor, in readable words, and exported as CSV or JSON with the same filters."""

from __future__ import annotations

import csv
import io
import json

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.utils.http import urlencode

from meshes import selectors
from meshes.audit import audit_verify
from meshes.audit_text import audit_names, details_line, readable_payload
from meshes.views.common import mesh_context, mesh_view
from protocol.encoding import iso_ms


def _filters(request: HttpRequest) -> dict[str, str | None]:
    return {"event_type": request.GET.get("type") or None, "actor_member_id": request.GET.get("actor") or None}


@mesh_view
def audit_log(request: HttpRequest, actor) -> HttpResponse:
    filters = _filters(request)
    page = selectors.audit_page(actor=actor, page_number=request.GET.get("page"), **filters)
    events = list(page.object_list)
    positions = selectors.audit_positions(mesh=actor.mesh, up_to_id=events[0].id) if events else {}
    names = audit_names(mesh=actor.mesh)
    types, actors = selectors.audit_facets(actor=actor)
    query = urlencode({key: value for key, value in (("type", filters["event_type"]),
                                                     ("actor", filters["actor_member_id"])) if value})
    context = {
        **mesh_context(actor, tab="audit"),
        "verdict": audit_verify(mesh_id=actor.mesh.id),
        "page": page,
        "rows": [(positions.get(event.id), event, readable_payload(event.payload, names)) for event in events],
        "event_types": types,
        "actors": actors,
        "selected_type": filters["event_type"] or "",
        "selected_actor": filters["actor_member_id"] or "",
        "filter_query": query,
    }
    return render(request, "dashboard/audit.html", context)


def _export_rows(actor, filters) -> list[dict]:
    events = list(selectors.audit_events(actor=actor, **filters))
    positions = selectors.audit_positions(mesh=actor.mesh, up_to_id=events[0].id) if events else {}
    names = audit_names(mesh=actor.mesh)
    return [
        {
            "position": positions.get(event.id),
            "createdAt": iso_ms(event.created_at),
            "eventType": event.event_type,
            "actorName": event.actor_display_name,
            "actorMemberId": event.actor_member_id,
            "details": details_line(event.payload, names),
            "payload": event.payload,
            "hash": event.hash,
            "prevHash": event.prev_hash,
        }
        for event in events
    ]


def _attachment(response: HttpResponse, actor, extension: str) -> HttpResponse:
    stamp = timezone.now().strftime("%Y%m%d-%H%M")
    response["Content-Disposition"] = f'attachment; filename="audit-{actor.mesh.slug}-{stamp}.{extension}"'
    return response


@mesh_view
def audit_export(request: HttpRequest, actor, fmt: str) -> HttpResponse:
    rows = _export_rows(actor, _filters(request))
    if fmt == "json":
        verdict = audit_verify(mesh_id=actor.mesh.id)
        body = {"meshId": actor.mesh.id, "chainVerified": verdict.ok, "events": rows}
        response = HttpResponse(json.dumps(body, ensure_ascii=False, indent=2), content_type="application/json")
        return _attachment(response, actor, "json")
    buffer = io.StringIO()
    columns = ["position", "createdAt", "eventType", "actorName", "actorMemberId", "details", "payload", "hash", "prevHash"]
    writer = csv.DictWriter(buffer, fieldnames=columns)
    writer.writeheader()
    for row in rows:
        writer.writerow({**row, "payload": json.dumps(row["payload"], ensure_ascii=False, sort_keys=True)})
    return _attachment(HttpResponse(buffer.getvalue(), content_type="text/csv; charset=utf-8"), actor, "csv")
