"""The webhooks tab (owners and admins): create one (optionally HMAC-signed), copy its URL, revoke it. The signing
secret is shown once, right after creation; the URL can be shown again (it is sealed at rest)."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from meshes import selectors
from meshes.errors import ServiceError
from meshes.services.webhooks import webhook_create, webhook_delete, webhook_url
from meshes.views.common import error_status, mesh_context, mesh_view, post_only


def _page(request: HttpRequest, actor, *, created: dict | None = None, error: str | None = None,
          status: int = 200) -> HttpResponse:
    hooks = [{"hook": hook, "url": webhook_url(hook)} for hook in selectors.webhooks_for_manager(actor=actor)]
    context = {**mesh_context(actor, tab="webhooks"), "hooks": hooks, "created": created, "error": error,
               "name": request.POST.get("name", "") if error else ""}
    return render(request, "dashboard/webhooks.html", context, status=status)


@mesh_view
def webhook_list(request: HttpRequest, actor) -> HttpResponse:
    return _page(request, actor)


@mesh_view
@post_only("dashboard:webhooks")
def webhook_create_view(request: HttpRequest, actor) -> HttpResponse:
    try:
        hook, signing_secret = webhook_create(actor=actor, name=request.POST.get("name"),
                                              signed=request.POST.get("signed") == "on")
    except ServiceError as error:
        return _page(request, actor, error=error.message, status=error_status(error))
    return _page(request, actor, created={"name": hook.name, "url": webhook_url(hook), "signing_secret": signing_secret})


@mesh_view
@post_only("dashboard:webhooks")
def webhook_delete_view(request: HttpRequest, actor, name: str) -> HttpResponse:
    hook = webhook_delete(actor=actor, name=name)
    if hook is not None:
        messages.success(request, f"Webhook {hook.name} revoked: its URL answers 401 from now on.")
    return redirect("dashboard:webhooks", mesh_id=actor.mesh.id)
