"""Member-signed HTTP requests (protocol/http_signing.py): a route wrapped in `requires_member` gets the signing
member as an Actor. A missing or bad signature is 401, a signature seen before (a replay) is 401 too: each one is
remembered for twice the allowed clock skew."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from django.core.cache import cache
from django.http import HttpRequest, HttpResponse, JsonResponse

from meshes import selectors
from meshes.models import Member
from protocol.http_signing import (
    MAX_SKEW_MS,
    MEMBER_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    request_signature_valid,
)
from protocol.ids import is_id_fragment

Handler = Callable[..., HttpResponse]


def _meta(name: str) -> str:
    return "HTTP_" + name.upper().replace("-", "_")


def signing_member(request: HttpRequest, *, body: bytes) -> Member | None:
    """The live member whose signature the request carries, or None."""
    mesh_id, _, member_id = request.META.get(_meta(MEMBER_HEADER), "").partition("/")
    signature = request.META.get(_meta(SIGNATURE_HEADER), "")
    try:
        timestamp = int(request.META.get(_meta(TIMESTAMP_HEADER), ""))
    except ValueError:
        return None
    if not (is_id_fragment(mesh_id) and is_id_fragment(member_id) and len(signature) == 128):
        return None
    member = Member.objects.filter(pk=member_id, mesh_id=mesh_id, revoked_at=None, pubkey__isnull=False).first()
    if member is None or not request_signature_valid(
        method=request.method or "", path=request.get_full_path(), mesh_id=mesh_id, member_id=member_id,
        pubkey=member.pubkey, timestamp=timestamp, body=body, signature=signature,
    ):
        return None
    if not cache.add(f"signed-request:{signature}", 1, timeout=2 * MAX_SKEW_MS // 1000):
        return None  # a replay
    return member


def requires_member(handler: Handler) -> Handler:
    @functools.wraps(handler)
    def wrapped(request: HttpRequest, **kwargs: Any) -> HttpResponse:
        member = signing_member(request, body=request.body)
        if member is None:
            return JsonResponse({"ok": False, "error": "unauthorized: sign the request with your member key"}, status=401)
        return handler(request, selectors.actor_for_member(member_id=member.id, via="api"), **kwargs)

    return wrapped
