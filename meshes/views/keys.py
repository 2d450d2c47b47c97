"""API keys of a mesh: create (secret shown once), list, revoke by id or id prefix."""

from __future__ import annotations

import json
from datetime import timedelta

from django.contrib import messages
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.cache import never_cache

from meshes import selectors, services
from meshes.errors import ServiceError
from meshes.forms import ApiKeyCreateForm, ApiKeyRevokeForm
from meshes.keyvault import open_secret, seal_secret
from meshes.views.common import attach_error, error_status, mesh_context, mesh_view, post_only

# A new key's secret waits for its one page view in the cache, sealed with the server's key-encryption key, for
# at most ten minutes, and is deleted by that view: never in the session store, never in plain text at rest.
NEW_SECRET_SECONDS = 600


def _new_secret_slot(request: HttpRequest, mesh_id: str) -> str:
    if request.session.session_key is None:
        request.session.save()
    return f"dashboard:new-api-key:{request.session.session_key}:{mesh_id}"


def _stash_new_secret(request: HttpRequest, mesh_id: str, *, key_id: str, secret: str) -> None:
    sealed = seal_secret(json.dumps({"key_id": key_id, "secret": secret}))
    cache.set(_new_secret_slot(request, mesh_id), sealed, timeout=NEW_SECRET_SECONDS)


def _take_new_secret(request: HttpRequest, mesh_id: str) -> dict | None:
    slot = _new_secret_slot(request, mesh_id)
    sealed = cache.get(slot)
    cache.delete(slot)
    return json.loads(open_secret(sealed)) if sealed else None


def _bindable(actor):
    """Members a key can act as: those with a key of their own (joined from a terminal)."""
    return selectors.members_for_mesh(mesh=actor.mesh).filter(pubkey__isnull=False)


def _keys_page(request: HttpRequest, actor, *, create_form=None, revoke_form=None, status: int = 200) -> HttpResponse:
    # A secret whose one-time page was never opened must not wait for it any longer.
    _take_new_secret(request, actor.mesh.id)
    now = timezone.now()
    context = {
        **mesh_context(actor, tab="keys"),
        "keys": [(key, key.status(now)) for key in selectors.api_keys_for_manager(actor=actor)],
        "create_form": create_form or ApiKeyCreateForm(members=_bindable(actor)),
        "revoke_form": revoke_form or ApiKeyRevokeForm(),
    }
    return render(request, "dashboard/api_keys.html", context, status=status)


@mesh_view
def api_key_list(request: HttpRequest, actor) -> HttpResponse:
    return _keys_page(request, actor)


@mesh_view
@post_only("dashboard:api_keys")
def api_key_create(request: HttpRequest, actor) -> HttpResponse:
    form = ApiKeyCreateForm(request.POST, members=_bindable(actor))
    if not form.is_valid():
        return _keys_page(request, actor, create_form=form, status=400)
    days = form.cleaned_data["expires_in_days"]
    try:
        key, secret = services.api_key_create(
            actor=actor,
            label=form.cleaned_data["label"],
            capabilities=form.cleaned_data["capabilities"],
            expires_at=timezone.now() + timedelta(days=days) if days else None,
            member_id=form.cleaned_data["member_id"] or None,
        )
    except ServiceError as error:
        attach_error(form, error)
        return _keys_page(request, actor, create_form=form, status=error_status(error))
    # Post/redirect/get: the sealed secret waits for exactly one GET of the next page.
    _stash_new_secret(request, actor.mesh.id, key_id=key.id, secret=secret)
    return redirect("dashboard:api_key_created", mesh_id=actor.mesh.id)


@mesh_view
@never_cache
def api_key_created(request: HttpRequest, actor) -> HttpResponse:
    keys = selectors.api_keys_for_manager(actor=actor)
    stashed = _take_new_secret(request, actor.mesh.id)
    key = keys.filter(pk=stashed["key_id"]).first() if stashed else None
    context = {
        **mesh_context(actor, tab="keys"),
        "key": key,
        "secret": stashed["secret"] if key else None,
    }
    return render(request, "dashboard/api_key_created.html", context)


@mesh_view
@post_only("dashboard:api_keys")
def api_key_revoke(request: HttpRequest, actor) -> HttpResponse:
    form = ApiKeyRevokeForm(request.POST)
    if not form.is_valid():
        return _keys_page(request, actor, revoke_form=form, status=400)
    key_ref = form.cleaned_data["key_ref"].strip()
    try:
        outcome = services.api_key_revoke(actor=actor, key_ref=key_ref)
    except ServiceError as error:
        attach_error(form, error, field="key_ref")
        return _keys_page(request, actor, revoke_form=form, status=error_status(error))
    if outcome.status == "not_found":
        form.add_error("key_ref", f"no key in this mesh has an id starting with “{key_ref}” (not_found)")
        return _keys_page(request, actor, revoke_form=form, status=404)
    if outcome.status == "not_unique":
        form.add_error("key_ref", f"“{key_ref}” matches {outcome.matches} keys; type more of the id (not_unique)")
        return _keys_page(request, actor, revoke_form=form, status=400)
    messages.success(request, f"Key {outcome.key_id[:8]} revoked; it no longer authenticates.")
    return redirect("dashboard:api_keys", mesh_id=actor.mesh.id)
