"""Overload is a clear answer, never a 500: when the database cannot be reached or the connection pool stays
exhausted past its timeout, a request gets 503 with Retry-After (JSON on the API, public and broker routes)."""

from __future__ import annotations

import logging

from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.deprecation import MiddlewareMixin

logger = logging.getLogger(__name__)
RETRY_AFTER_SECONDS = 5
HTML_PREFIXES = ("/meshes", "/accounts", "/i/", "/join/", "/admin")


def unavailable(request: HttpRequest) -> HttpResponse:
    if request.path == "/" or request.path.startswith(HTML_PREFIXES):
        response = HttpResponse(
            "<!doctype html><title>Busy</title><p>claudemesh is busy or its database is unreachable. "
            "Try again in a few seconds.</p>",
            status=503,
        )
    else:
        response = JsonResponse(
            {"ok": False, "error": "temporarily unavailable, retry", "code": "unavailable", "status": 503}, status=503
        )
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


class OverloadMiddleware(MiddlewareMixin):
    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if isinstance(exception, (OperationalError, InterfaceError)):
            logger.warning("database unavailable for %s %s: %s", request.method, request.path, exception)
            return unavailable(request)
        return None
