"""Invites of a mesh (create, list, share, revoke) and the public pages an invite link opens."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.views import redirect_to_login
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from meshes import selectors, services, site
from meshes.errors import ServiceError
from meshes.forms import InviteCreateForm
from meshes.views.common import attach_error, error_status, mesh_context, mesh_view, post_only


def _invites_page(request: HttpRequest, actor, *, form=None, status: int = 200) -> HttpResponse:
    now = timezone.now()
    invites = [
        (invite, invite.state(now), selectors.invite_links(invite=invite)["shortUrl"])
        for invite in selectors.invites_for_manager(actor=actor)
    ]
    context = {
        **mesh_context(actor, tab="invites"),
        "form": form or InviteCreateForm(),
        "invites": invites,
        "local_only": site.only_this_machine(),
    }
    return render(request, "dashboard/invites.html", context, status=status)


@mesh_view
def invite_list(request: HttpRequest, actor) -> HttpResponse:
    return _invites_page(request, actor)


@mesh_view
@post_only("dashboard:invites")
def invite_create(request: HttpRequest, actor) -> HttpResponse:
    form = InviteCreateForm(request.POST)
    if not form.is_valid():
        return _invites_page(request, actor, form=form, status=400)
    try:
        invite = services.invite_create(
            actor=actor,
            role=form.cleaned_data["role"],
            max_uses=form.cleaned_data["max_uses"],
            expires_in_days=form.cleaned_data["expires_in_days"],
        )
    except ServiceError as error:
        attach_error(form, error)
        return _invites_page(request, actor, form=form, status=error_status(error))
    messages.success(request, "Invite created. Share one of the links below.")
    return redirect("dashboard:invite", mesh_id=actor.mesh.id, invite_id=invite.id)


@mesh_view
def invite_detail(request: HttpRequest, actor, invite_id: str) -> HttpResponse:
    invite = selectors.invites_for_manager(actor=actor).filter(pk=invite_id).first()
    if invite is None:
        raise Http404("invite not found")
    links = selectors.invite_links(invite=invite)
    context = {
        **mesh_context(actor, tab="invites"),
        "invite": invite,
        "state": invite.state(),
        "links": links,
        "local_only": site.is_loopback(invite.token_broker_url) or site.is_loopback(links["shortUrl"]),
    }
    return render(request, "dashboard/invite_detail.html", context)


@mesh_view
@post_only("dashboard:invites")
def invite_revoke(request: HttpRequest, actor, invite_id: str) -> HttpResponse:
    try:
        invite = services.invite_revoke(actor=actor, invite_id=invite_id)
    except ServiceError as error:
        messages.error(request, error.message)
        return _invites_page(request, actor, status=error_status(error))
    messages.success(request, f"Invite {invite.code or invite.id[:8]} revoked; it can no longer be used.")
    return redirect("dashboard:invites", mesh_id=actor.mesh.id)


# --- public pages ----------------------------------------------------------------------------------------


def _landing_context(request: HttpRequest, invite, *, via_short_link: bool) -> dict:
    links = selectors.invite_links(invite=invite)
    return {
        "cli_link": links["shortUrl"] if via_short_link and invite.code else links["joinUrl"],
        "invite": invite,
        "mesh": invite.mesh,
        # An archived mesh's invites are dead whatever their own state says.
        "state": "archived" if invite.mesh.is_archived else invite.state(),
        "inviter": invite.created_by_member.display_name if invite.created_by_member else None,
        "membership": selectors.live_membership(mesh=invite.mesh, user=request.user),
    }


def invite_landing(request: HttpRequest, code: str) -> HttpResponse:
    """`/i/<code>`: what the invite is and how to join, from a terminal or (signed in) right here."""
    invite = selectors.invite_by_code(code=code)
    if invite is None:
        raise Http404("invite not found")
    return render(request, "dashboard/invite_landing.html", _landing_context(request, invite, via_short_link=True))


@require_POST
def invite_accept(request: HttpRequest, code: str) -> HttpResponse:
    if not request.user.is_authenticated:
        return redirect_to_login(reverse("dashboard:invite_landing", args=[code]))
    try:
        member = services.invite_accept_for_user(code=code, user=request.user)
    except ServiceError as error:
        invite = selectors.invite_by_code(code=code)
        if invite is None:
            raise Http404("invite not found") from None
        context = {**_landing_context(request, invite, via_short_link=True), "accept_error": error.message}
        return render(request, "dashboard/invite_landing.html", context, status=error_status(error))
    if member is None:  # the mesh's owner opening their own invite
        return redirect("dashboard:mesh", mesh_id=selectors.invite_by_code(code=code).mesh_id)
    messages.success(request, f"You joined “{member.mesh.name}” as {member.get_role_display().lower()}.")
    return redirect("dashboard:mesh", mesh_id=member.mesh_id)


def join_landing(request: HttpRequest, token: str) -> HttpResponse:
    """`/join/<token>`: the v1 link's web page; joining itself happens in the CLI."""
    invite = selectors.invite_by_token(token=token)
    if invite is None:
        raise Http404("invite not found")
    return render(request, "dashboard/invite_landing.html", _landing_context(request, invite, via_short_link=False))
