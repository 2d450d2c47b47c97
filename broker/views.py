"""HTTP on the broker's port (protocol.md §6.1, §4.10): health, readiness, metrics, the status hook, and the
dashboard's live view. Permissive CORS as the reference; OPTIONS → 204.
"""

from __future__ import annotations

import json
import logging
import os
import time
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

from broker import conf, metrics, selectors
from broker.node import get_node
from broker.ratelimit import TokenBuckets
from broker.services import presence as presence_services
from meshes import selectors as mesh_selectors
from meshes.errors import NotFound
from protocol.encoding import iso_ms

logger = logging.getLogger(__name__)
STARTED = time.monotonic()
CORS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "POST, GET, OPTIONS",
    "Access-Control-Allow-Headers": "Content-Type, X-Mesh-Id, X-Member-Id, X-File-Name, X-Tags, X-Persistent, X-Target-Spec",
}
HOOK_LIMIT_PER_MIN = int(os.environ.get("HOOK_RATE_LIMIT_PER_MIN", "30"))
_hook_buckets = TokenBuckets(burst=HOOK_LIMIT_PER_MIN, per_minute=HOOK_LIMIT_PER_MIN)


def _json(body: dict[str, Any], status: int = 200) -> JsonResponse:
    response = JsonResponse(body, status=status)
    for key, value in CORS.items():
        response[key] = value
    return response


def _options() -> HttpResponse:
    response = HttpResponse(status=204)
    for key, value in CORS.items():
        response[key] = value
    return response


def _db_up() -> bool:
    try:
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


async def health(request: HttpRequest) -> HttpResponse:
    if request.method == "OPTIONS":
        return _options()
    up = await sync_to_async(_db_up)()
    metrics.db_healthy.set(1 if up else 0)
    return _json({"status": "ok", "db": "up" if up else "down", **_identity()})


async def health_ready(request: HttpRequest) -> HttpResponse:
    if request.method == "OPTIONS":
        return _options()
    if not await sync_to_async(_db_up)():
        metrics.db_healthy.set(0)
        return _json({"status": "not_ready", "reason": "db_down"}, status=503)
    metrics.db_healthy.set(1)
    if not await _layer_up():
        return _json({"status": "not_ready", "reason": "channel_layer_down"}, status=503)
    return _json({"status": "ready", **_identity()})


async def metrics_view(request: HttpRequest) -> HttpResponse:
    response = HttpResponse(generate_latest(REGISTRY), content_type=CONTENT_TYPE_LATEST)
    for key, value in CORS.items():
        response[key] = value
    return response


@csrf_exempt
async def hook_set_status(request: HttpRequest) -> HttpResponse:
    if request.method == "OPTIONS":
        return _options()
    if request.method != "POST":
        return _json({"ok": False, "error": "method not allowed"}, status=405)
    metrics.hook_requests.inc()
    if len(request.body) > conf.max_message_bytes():
        return _json({"ok": False, "error": "payload too large"}, status=413)
    try:
        body = json.loads(request.body or b"{}")
        if not isinstance(body, dict):
            raise ValueError("body must be a JSON object")
    except ValueError as exc:
        return _json({"ok": False, "error": str(exc)}, status=500)
    pid = body.get("pid") if isinstance(body.get("pid"), int) and not isinstance(body.get("pid"), bool) else None
    cwd, status = body.get("cwd"), body.get("status")
    if not _hook_buckets.take(f"{pid or 0}:{cwd if isinstance(cwd, str) else ''}"):
        metrics.hook_rate_limited.inc()
        return _json({"ok": False, "error": "rate limited"}, status=429)
    if not isinstance(cwd, str) or not cwd or not isinstance(status, str) or not status:
        return _json({"ok": False, "error": "cwd and status required"})
    try:
        status = presence_services.check_status(status)
    except ValueError as exc:
        return _json({"ok": False, "error": str(exc)})
    try:
        outcome = await sync_to_async(presence_services.hook_set_status)(cwd=cwd, status=status, pid=pid)
    except Exception as exc:
        logger.exception("hook set-status failed")
        return _json({"ok": False, "error": str(exc)}, status=500)
    if outcome.presence is not None:  # §4.10 step 7: drain that connection, on whichever worker holds it
        node = get_node()
        await node.ensure_started()
        await node.ring({(outcome.presence.node_id, outcome.presence.id)})
    return _json(outcome.body)


async def live_json(request: HttpRequest, mesh_id: str) -> HttpResponse:
    """Dashboard live view: members of the mesh only (session auth), 404 for everyone else."""
    user = await request.auser()

    def read():
        mesh_selectors.actor_for_user(mesh_id=mesh_id, user=user)
        return selectors.online_peers(mesh_id=mesh_id)

    try:
        peers = await sync_to_async(read)()
    except NotFound:
        return JsonResponse({"error": "mesh not found"}, status=404)
    for peer in peers:
        peer["connectedAt"] = iso_ms(peer["connectedAt"])
    return JsonResponse({"meshId": mesh_id, "peers": peers})
