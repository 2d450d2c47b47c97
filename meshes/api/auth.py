"""Bearer API-key authentication for `/api/v1` (platform.md §2.6).

A handler wrapped in `requires_key(capability)` gets the caller as an Actor bounded to the key's mesh; every
MeshError (ServiceError or Forbidden) it raises becomes the JSON error body with the error's status.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse

from meshes import selectors, services
from meshes.actors import Actor
from meshes.api.http import BadBody, error_response
from meshes.api.ratelimit import over_limit
from meshes.errors import MeshError

logger = logging.getLogger(__name__)

Handler = Callable[..., HttpResponse]


def bearer_secret(request: HttpRequest) -> str | None:
    header = request.META.get("HTTP_AUTHORIZATION", "")
    scheme, _, secret = header.partition(" ")
    if scheme.lower() != "bearer" or not secret.strip():
        return None
    return secret.strip()


def key_actor(request: HttpRequest, capability: str | None = None) -> Actor | HttpResponse:
    """The key's Actor, or the 401/403 answer: no live key, or one without `capability`; over the per-key rate."""
    secret = bearer_secret(request)
    if secret is None:
        return error_response("api_key_missing", "send the API key as 'Authorization: Bearer cm_…'", 401)
    api_key = services.api_key_authenticate(secret=secret)
    if api_key is None:
        return error_response("api_key_invalid", "the API key is unknown, revoked or expired", 401)
    if capability is not None and not api_key.has_capability(capability):
        return error_response(
            "api_key_missing_capability", f"this API key lacks the '{capability}' capability", 403,
            capability=capability,
        )
    retry_after = over_limit(scope="api-key", ip=api_key.id, per_minute=settings.API_RATE_PER_MIN)
    if retry_after is not None:
        response = error_response("rate_limited", "too many requests for this key", 429, retryAfter=retry_after)
        response["Retry-After"] = str(retry_after)
        return response
    return selectors.actor_for_api_key(api_key=api_key)


def requires_key(capability: str | None = None) -> Callable[[Handler], Handler]:
    """401 without a live key, 403 when the key lacks `capability` (None: any live key will do)."""

    def decorate(handler: Handler) -> Handler:
        @functools.wraps(handler)
        def wrapped(request: HttpRequest, **kwargs: Any) -> HttpResponse:
            actor = key_actor(request, capability)
            if isinstance(actor, HttpResponse):
                return actor
            try:
                return handler(request, actor, **kwargs)
            except BadBody as exc:
                return error_response(exc.code, exc.message, exc.status)
            except MeshError as exc:
                return error_response(exc.code, exc.message, exc.status, **exc.extra)

        return wrapped

    return decorate
