"""What every mesh page shares: resolving the signed-in user's membership, the 403 page, error plumbing."""

from __future__ import annotations

from functools import wraps

from django import forms
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from meshes import selectors
from meshes.actors import Actor
from meshes.errors import Forbidden, NotFound, ServiceError


def actor_or_404(request: HttpRequest, mesh_id: str) -> Actor:
    try:
        return selectors.actor_for_user(mesh_id=mesh_id, user=request.user)
    except NotFound:
        # Outsiders cannot tell a mesh they are not in from one that does not exist.
        raise Http404("mesh not found") from None


def forbidden_page(request: HttpRequest, *, actor: Actor | None, error: Forbidden) -> HttpResponse:
    return render(
        request,
        "dashboard/forbidden.html",
        {"mesh": actor.mesh if actor else None, "actor": actor, "error": error},
        status=403,
    )


def post_only(back: str):
    """A form's POST target. A GET there (a reload of the page a failed POST rendered) goes back to the form's page
    instead of a bare 405."""

    def decorate(view):
        @wraps(view)
        def wrapper(request: HttpRequest, actor: Actor, *args, **kwargs) -> HttpResponse:
            if request.method != "POST":
                return redirect(back, mesh_id=actor.mesh.id)
            return view(request, actor, *args, **kwargs)

        return wrapper

    return decorate


def mesh_view(view):
    """Signed-in members only (others: 404); a Forbidden from any service becomes the 403 page."""

    @login_required
    @wraps(view)
    def wrapper(request: HttpRequest, mesh_id: str, *args, **kwargs) -> HttpResponse:
        actor = actor_or_404(request, mesh_id)
        try:
            return view(request, actor, *args, **kwargs)
        except Forbidden as error:
            return forbidden_page(request, actor=actor, error=error)

    return wrapper


def mesh_context(actor: Actor, *, tab: str) -> dict:
    return {
        "mesh": actor.mesh,
        "actor": actor,
        "me": actor.member,
        "can_manage": actor.is_manager,
        "is_owner": actor.is_owner,
        "tab": tab,
    }


def attach_error(form: forms.Form, error: ServiceError, *, field: str | None = None) -> None:
    """Show a service's message next to the form; `form` stays bound so nothing typed is lost."""
    form.add_error(field if field in form.fields else None, error.message)


def error_status(error: ServiceError) -> int:
    return error.status if 400 <= error.status < 500 else 400
