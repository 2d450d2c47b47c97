"""`/api/v1`: parse, call services/selectors with the key's actor, render JSON. No rules live here."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, JsonResponse

from meshes import selectors, services
from meshes.actors import Actor
from meshes.api.auth import requires_key
from meshes.api.http import error_response, json_object, route
from meshes.api.pagination import keyset_page
from meshes.models import ApiKeyCapability, Invite, Member
from meshes.wire import api_key_entry, api_key_revoke_body
from protocol.encoding import iso_or_none


def _not_allowed(allowed: list[str]) -> JsonResponse:
    return error_response("method_not_allowed", f"use {' or '.join(allowed)} here", 405)


def api_route(**handlers) -> Any:
    return route(not_allowed=_not_allowed, **handlers)


def not_found(request: HttpRequest, unmatched: str = "") -> JsonResponse:
    return error_response("not_found", "no such API route", 404)


# --- renderers ------------------------------------------------------------------------------------------


def _member_json(member: Member) -> dict[str, Any]:
    return {
        "id": member.id,
        "displayName": member.display_name,
        "role": member.role,
        "roleTag": member.role_tag,
        "pubkey": member.pubkey,
        "groups": member.default_groups,
        "joinedAt": iso_or_none(member.joined_at),
        "lastSeenAt": iso_or_none(member.last_seen_at),
    }


def _invite_json(invite: Invite, *, with_links: bool) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": invite.id,
        "code": invite.code,
        "role": invite.role,
        "maxUses": invite.max_uses,
        "usedCount": invite.used_count,
        "state": invite.state(),
        "expiresAt": iso_or_none(invite.expires_at),
        "createdAt": iso_or_none(invite.created_at),
        "revokedAt": iso_or_none(invite.revoked_at),
    }
    if with_links:
        # The v1 token carries the mesh root key: only admin keys reach these handlers.
        body["token"] = invite.token
        body.update(selectors.invite_links(invite=invite))
    return body


# --- handlers -------------------------------------------------------------------------------------------


@requires_key()
def _me(request: HttpRequest, actor: Actor) -> JsonResponse:
    key = actor.api_key
    return JsonResponse(
        {
            "mesh": {"id": actor.mesh.id, "name": actor.mesh.name, "slug": actor.mesh.slug},
            "key": {
                "id": key.id,
                "label": key.label,
                "prefix": key.secret_prefix,
                "capabilities": key.capabilities,
                "topicScopes": key.topic_scopes,
                "expiresAt": iso_or_none(key.expires_at),
            },
        }
    )


@requires_key(ApiKeyCapability.READ)
def _members(request: HttpRequest, actor: Actor) -> JsonResponse:
    members, cursor = keyset_page(selectors.members_for_mesh(mesh=actor.mesh), request, time_field="joined_at",
                                  newest_first=False)
    return JsonResponse({"members": [_member_json(member) for member in members], "nextCursor": cursor})


@requires_key(ApiKeyCapability.ADMIN)
def _invites_list(request: HttpRequest, actor: Actor) -> JsonResponse:
    invites, cursor = keyset_page(selectors.invites_for_manager(actor=actor), request, time_field="created_at",
                                  newest_first=True)
    return JsonResponse(
        {"invites": [_invite_json(invite, with_links=invite.state() == "active") for invite in invites],
         "nextCursor": cursor}
    )


@requires_key(ApiKeyCapability.ADMIN)
def _invites_create(request: HttpRequest, actor: Actor) -> JsonResponse:
    body = json_object(request)
    invite = services.invite_create(
        actor=actor,
        role=body.get("role", "member"),
        max_uses=body.get("maxUses", 1),
        expires_in_days=body.get("expiresInDays"),
    )
    return JsonResponse(_invite_json(invite, with_links=True), status=201)


@requires_key(ApiKeyCapability.ADMIN)
def _invite_revoke(request: HttpRequest, actor: Actor, invite_id: str) -> JsonResponse:
    invite = services.invite_revoke(actor=actor, invite_id=invite_id)
    return JsonResponse(_invite_json(invite, with_links=False))


@requires_key(ApiKeyCapability.ADMIN)
def _api_keys_list(request: HttpRequest, actor: Actor) -> JsonResponse:
    keys, cursor = keyset_page(selectors.api_keys_for_manager(actor=actor), request, time_field="created_at",
                               newest_first=True)
    return JsonResponse({"keys": [api_key_entry(key) for key in keys], "nextCursor": cursor})


@requires_key(ApiKeyCapability.ADMIN)
def _api_keys_create(request: HttpRequest, actor: Actor) -> JsonResponse:
    body = json_object(request)
    key, secret = services.api_key_create(
        actor=actor,
        label=body.get("label"),
        capabilities=body.get("capabilities"),
        expires_at=body.get("expiresAt"),
        topic_scopes=body.get("topicScopes"),
        member_id=body.get("memberId"),
    )
    # The only response that ever carries the secret.
    return JsonResponse({**api_key_entry(key), "secret": secret}, status=201)


@requires_key(ApiKeyCapability.ADMIN)
def _api_keys_revoke(request: HttpRequest, actor: Actor) -> JsonResponse:
    body = json_object(request)
    outcome = services.api_key_revoke(actor=actor, key_ref=body.get("id"))
    return JsonResponse(api_key_revoke_body(outcome))


me = api_route(GET=_me)
members = api_route(GET=_members)
invites = api_route(GET=_invites_list, POST=_invites_create)
invite_revoke = api_route(POST=_invite_revoke)
api_keys = api_route(GET=_api_keys_list, POST=_api_keys_create)
api_key_revoke = api_route(POST=_api_keys_revoke)
