"""The moderation tab (owners and admins): close a live session (kick: it stays out; disconnect: it may come
back), ban a member and lift a ban, and set what each sender may do to a member (its grants). The rules are the
services'; the sessions come from the broker through `meshes.online`."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from meshes import online, selectors
from meshes.errors import ServiceError
from meshes.services.grants import member_grants_update
from meshes.services.moderation import member_ban, member_unban
from meshes.views.common import mesh_context, mesh_view, post_only
from protocol.vocabulary import DEFAULT_GRANTS, GRANTS


def _grant_rows(members: list, subject) -> list[dict]:
    """Every other keyed member as a sender, with what it may do to `subject` (its entry, or the defaults)."""
    grants = subject.peer_grants if subject is not None and isinstance(subject.peer_grants, dict) else {}
    rows = []
    for sender in members:
        if subject is None or sender.pk == subject.pk or not sender.pubkey:
            continue
        entry = grants.get(sender.pubkey)
        rows.append({"sender": sender, "caps": list(DEFAULT_GRANTS) if entry is None else entry, "custom": entry is not None})
    return rows


@mesh_view
def moderation(request: HttpRequest, actor) -> HttpResponse:
    bans = list(selectors.bans_for_manager(actor=actor))  # owners and admins only: the 403 page for anyone else
    members = list(selectors.members_for_mesh(mesh=actor.mesh))
    keyed = [m for m in members if m.pubkey]
    subject = next((m for m in keyed if m.pk == request.GET.get("member")), keyed[0] if keyed else None)
    context = {
        **mesh_context(actor, tab="moderation"),
        "online_peers": online.online_peers(mesh_id=actor.mesh.id),
        "members": members,
        "bans": bans,
        "keyed": keyed,
        "subject": subject,
        "grant_rows": _grant_rows(keyed, subject),
        "capabilities": GRANTS,
    }
    return render(request, "dashboard/moderation.html", context)


def _done(request: HttpRequest, actor, text: str | None, error: ServiceError | None = None, **query) -> HttpResponse:
    if error is not None:
        messages.error(request, error.message)
    elif text:
        messages.success(request, text)
    response = redirect("dashboard:moderation", mesh_id=actor.mesh.id)
    if query:
        response["Location"] += "?" + "&".join(f"{k}={v}" for k, v in query.items())
    return response


@mesh_view
@post_only("dashboard:moderation")
def session_close(request: HttpRequest, actor, presence_id: str) -> HttpResponse:
    disconnect = request.POST.get("how") == "disconnect"
    names = online.kick_session(actor=actor, presence_id=presence_id, disconnect=disconnect)
    verb = "disconnected (it may reconnect)" if disconnect else "kicked (it will not reconnect)"
    return _done(request, actor, f"{', '.join(names)} {verb}." if names else "That session had already gone.")


def _act(request: HttpRequest, actor, change, done_text, **query) -> HttpResponse:
    """A change the services refuse for the request (the owner cannot be banned, a bad key) is said on the page;
    one they refuse for the actor (not a manager) is the 403 page."""
    try:
        member = change()
    except ServiceError as error:
        return _done(request, actor, None, error, **query)
    return _done(request, actor, done_text(member), **query)


@mesh_view
@post_only("dashboard:moderation")
def member_ban_view(request: HttpRequest, actor, member_id: str) -> HttpResponse:
    return _act(request, actor, lambda: member_ban(actor=actor, member_id=member_id),
                lambda m: f"{m.display_name} is banned: its sessions are closed and it cannot reconnect.")


@mesh_view
@post_only("dashboard:moderation")
def member_unban_view(request: HttpRequest, actor, member_id: str) -> HttpResponse:
    return _act(request, actor, lambda: member_unban(actor=actor, member_id=member_id),
                lambda m: f"{m.display_name} may connect again.")


@mesh_view
@post_only("dashboard:moderation")
def member_grants(request: HttpRequest, actor, member_id: str) -> HttpResponse:
    caps = None if request.POST.get("reset") else request.POST.getlist("caps")
    grants = {request.POST.get("sender", ""): caps}
    return _act(request, actor, lambda: member_grants_update(actor=actor, member_id=member_id, grants=grants),
                lambda m: f"Grants of {m.display_name} saved.", member=member_id)
