"""Signed-in terminals: the `claudemesh login` approval page (`/cli-auth`), the paste-token page (`/token`) and
the list of terminals signed in to the account, each revocable."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_http_methods, require_POST

from accounts import cli_sessions
from accounts.cli_sessions import CliAuthError
from meshes.api.ratelimit import client_ip


@login_required
@require_http_methods(["GET", "POST"])
def cli_auth(request: HttpRequest) -> HttpResponse:
    """Shows what asks to sign in (code, machine, address) and waits for an explicit Approve or Deny: nothing is
    approved on page load, so a link someone else sent cannot sign their terminal in as you."""
    session_ref = request.POST.get("session") or request.GET.get("session") or request.GET.get("code") or ""
    code = cli_sessions.device_code_pending(session_ref=session_ref)
    decided, error = None, None
    if request.method == "POST":
        try:
            code = cli_sessions.device_code_decide(
                user=request.user, session_ref=session_ref, approve=request.POST.get("decision") == "approve"
            )
            decided = code.status
        except CliAuthError as exc:
            error = exc.message
    status = 200 if code is not None else 404
    return render(request, "dashboard/cli_auth.html",
                  {"code": code, "session_ref": session_ref, "decided": decided, "error": error,
                   "expired": code is not None and code.is_expired(), "now": timezone.now()}, status=status)


@login_required
@require_http_methods(["GET", "POST"])
def paste_token(request: HttpRequest) -> HttpResponse:
    """A token to paste into `claudemesh login` where no browser can reach the terminal. Shown once."""
    token = None
    if request.method == "POST":
        _, token = cli_sessions.cli_session_mint(user=request.user, kind="paste-token", hostname="paste-token",
                                                 ip=client_ip(request))
    return render(request, "dashboard/cli_token.html", {"token": token})


@login_required
def terminal_list(request: HttpRequest) -> HttpResponse:
    sessions = list(cli_sessions.cli_sessions_for_user(user=request.user)[:200])
    now = timezone.now()
    return render(request, "dashboard/terminals.html",
                  {"sessions": [(s, s.status(now)) for s in sessions]})


@login_required
@require_POST
def terminal_revoke(request: HttpRequest, session_id: str) -> HttpResponse:
    try:
        session = cli_sessions.cli_session_revoke(user=request.user, session_id=session_id)
        messages.success(request, f"Signed out {session.hostname or 'that terminal'}.")
    except CliAuthError as exc:
        messages.error(request, exc.message)
    return redirect("dashboard:terminals")
