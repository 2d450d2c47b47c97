"""HTTP on the broker's port (protocol.md §6.1, §4.10): health, readiness, metrics, the status hook, and the
status hook. Permissive CORS as the reference; OPTIONS → 204.
"""

from __future__ import annotations

import functools
import logging
import os
import time
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils.safestring import mark_safe
from django.views.decorators.csrf import csrf_exempt
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

from broker import conf, metrics, traffic
from broker.ratelimit import TokenBuckets
from broker.services import status as status_services
from broker.worker import get_worker
from meshes.api.http import BadBody, json_object, with_cors
from meshes.api.ratelimit import client_ip, over_limit, rate_limited_response
from meshes.views.common import mesh_context, mesh_view

logger = logging.getLogger(__name__)
STARTED = time.monotonic()
_hook_buckets: TokenBuckets | None = None


def _hook_limit() -> TokenBuckets:
    global _hook_buckets
    if _hook_buckets is None:
        per_minute = conf.hook_rate_per_minute()
        _hook_buckets = TokenBuckets(burst=per_minute, per_minute=per_minute)
    return _hook_buckets


def cors(view):
    """The site's one CORS policy (meshes.api.http) on every response of an async view; OPTIONS → 204."""

    @functools.wraps(view)
    async def wrapped(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if request.method == "OPTIONS":
            return with_cors(HttpResponse(status=204))
        return with_cors(await view(request, *args, **kwargs))

    return wrapped


def _db_up() -> bool:
    # With the connection pool, a database that is down would hold the check for the pool's whole timeout: ask the
    # pool with a short one instead, so readiness answers 503 at once.
    pool = connection.pool if connection.vendor == "postgresql" else None
    try:
        if pool is not None:
            with pool.connection(timeout=1) as conn:
                conn.execute("SELECT 1")
            return True
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return True
    except Exception:
        return False


async def _layer_up() -> bool:
    redis_url = getattr(settings, "REDIS_URL", "")
    if not redis_url:
        return True  # the in-memory layer lives in this process
    import redis.asyncio as aioredis

    client = aioredis.from_url(redis_url, socket_connect_timeout=1, socket_timeout=1)
    try:
        return bool(await client.ping())
    except Exception:
        return False
    finally:
        await client.aclose()


def _identity() -> dict[str, Any]:
    return {"version": conf.VERSION, "gitSha": os.environ.get("GIT_SHA", "dev"), "uptime": int(time.monotonic() - STARTED)}


@cors
async def health(request: HttpRequest) -> HttpResponse:
    up = await sync_to_async(_db_up)()
    metrics.db_healthy.set(1 if up else 0)
    return JsonResponse({"status": "ok", "db": "up" if up else "down", **_identity()})


@cors
async def health_ready(request: HttpRequest) -> HttpResponse:
    if not await sync_to_async(_db_up)():
        metrics.db_healthy.set(0)
        return JsonResponse({"status": "not_ready", "reason": "db_down"}, status=503)
    metrics.db_healthy.set(1)
    if not await _layer_up():
        return JsonResponse({"status": "not_ready", "reason": "channel_layer_down"}, status=503)
    return JsonResponse({"status": "ready", **_identity()})


@cors
async def metrics_view(request: HttpRequest) -> HttpResponse:
    return HttpResponse(generate_latest(REGISTRY), content_type=CONTENT_TYPE_LATEST)


@csrf_exempt
@cors
async def hook_set_status(request: HttpRequest) -> HttpResponse:
    if request.method != "POST":
        return JsonResponse({"ok": False, "error": "method not allowed"}, status=405)
    metrics.hook_requests.inc()
    retry_after = await sync_to_async(over_limit)(
        scope="hook", ip=client_ip(request), per_minute=settings.HOOK_IP_RATE_LIMIT_PER_MIN
    )
    if retry_after is not None:
        metrics.hook_rate_limited.inc()
        return rate_limited_response(retry_after)
    try:
        body = json_object(request, max_bytes=conf.max_message_bytes())
    except BadBody as exc:
        return JsonResponse({"ok": False, "error": exc.message, "code": exc.code}, status=exc.status)
    pid = body.get("pid") if isinstance(body.get("pid"), int) and not isinstance(body.get("pid"), bool) else None
    cwd, status = body.get("cwd"), body.get("status")
    if not _hook_limit().take(f"{pid or 0}:{cwd if isinstance(cwd, str) else ''}"):
        metrics.hook_rate_limited.inc()
        return JsonResponse({"ok": False, "error": "rate limited"}, status=429)
    if not isinstance(cwd, str) or not cwd or not isinstance(status, str) or not status:
        return JsonResponse({"ok": False, "error": "cwd and status required"})
    try:
        status = status_services.check_status(status)
    except ValueError as exc:
        return JsonResponse({"ok": False, "error": str(exc)})
    try:
        outcome = await sync_to_async(status_services.hook_post)(
            body=body, cwd=cwd, status=status, pid=pid, ip=client_ip(request)
        )
    except status_services.HookRefused as refused:
        return JsonResponse({"ok": False, "error": refused.message, "code": refused.code}, status=401)
    except Exception:
        logger.exception("hook set-status failed")
        return JsonResponse({"ok": False, "error": "status not stored, retry", "code": "unavailable"}, status=503)
    if outcome.presence is not None:  # §4.10 step 7: drain that connection, on whichever worker holds it
        worker = get_worker()
        await worker.ensure_started()
        await worker.fanout.ring({(outcome.presence.worker_id, outcome.presence.id)})
    return JsonResponse(outcome.body)


@mesh_view
def mesh_traffic_page(request: HttpRequest, actor) -> HttpResponse:
    """Dashboard tab for owners and admins: who sends, who receives, whose mail waits (counts, no content)."""
    report = traffic.mesh_traffic_for_manager(actor=actor)
    context = {
        **mesh_context(actor, tab="traffic"),
        "traffic": report,
        "chart": mark_safe(traffic.hourly_chart_svg(report.hourly)),  # numbers and escaped labels only
    }
    return render(request, "dashboard/traffic.html", context)
