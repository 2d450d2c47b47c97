"""Per-address limits for the anonymous routes (claim, invite-code lookup, join, the status hook): a fixed
one-minute window counted in the shared cache (Redis with REDIS_URL, so all workers count together). If the cache
fails, each process counts for itself rather than letting everything through or refusing everyone."""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse, JsonResponse

logger = logging.getLogger(__name__)
WINDOW_SECONDS = 60

_local_counts: dict[str, int] = {}
_local_lock = threading.Lock()


def client_ip(request: HttpRequest) -> str:
    return str(request.META.get("REMOTE_ADDR") or "unknown")


def _count(key: str) -> int:
    try:
        cache.add(key, 0, timeout=WINDOW_SECONDS + 5)
        return int(cache.incr(key))
    except Exception:
        logger.warning("rate-limit cache unavailable; counting in this process", exc_info=True)
        with _local_lock:
            if len(_local_counts) > 100_000:
                _local_counts.clear()
            _local_counts[key] = _local_counts.get(key, 0) + 1
            return _local_counts[key]


def over_limit(*, scope: str, ip: str, per_minute: int) -> int | None:
    """None while `ip` is within `per_minute` requests to `scope` this minute, else seconds until the next window."""
    if per_minute <= 0:
        return None
    window = int(time.time() // WINDOW_SECONDS)
    if _count(f"ratelimit:{scope}:{ip}:{window}") <= per_minute:
        return None
    return max(1, int((window + 1) * WINDOW_SECONDS - time.time()))


def rate_limited_response(retry_after: int) -> JsonResponse:
    response = JsonResponse(
        {"ok": False, "error": "rate limited", "code": "rate_limited", "retryAfter": retry_after}, status=429
    )
    response["Retry-After"] = str(retry_after)
    return response


def anonymous_rate_limit(scope: str, setting: str = "ANONYMOUS_RATE_LIMIT_PER_MIN") -> Callable:
    """A per-address limit on a sync view (`setting` names the per-minute limit)."""

    def decorate(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @functools.wraps(view)
        def wrapped(request: HttpRequest, *args, **kwargs) -> HttpResponse:
            retry_after = over_limit(scope=scope, ip=client_ip(request), per_minute=getattr(settings, setting, 60))
            if retry_after is not None:
                return rate_limited_response(retry_after)
            return view(request, *args, **kwargs)

        return wrapped

    return decorate
