"""`POST /hook/<meshId>/<secret>` (protocol.md §6.9): the URL's secret, then the size cap, the per-webhook rate
limit, the optional `X-Hub-Signature-256` HMAC, then JSON; the body goes to every member, live or queued. Answers
`{ok:true, delivered:<sessions reached live>, queued:<members it waits for>}`."""

from __future__ import annotations

import logging
import time

from asgiref.sync import sync_to_async
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from broker import metrics
from broker.services.routing import QUEUED
from broker.services.webhooks import webhook_deliver
from broker.views import cors
from broker.worker import get_worker
from meshes.api.http import BadBody, declared_length, json_value
from meshes.api.ratelimit import over_limit, rate_limited_response
from meshes.services.webhooks import webhook_authenticate, webhook_signature_valid

logger = logging.getLogger(__name__)


def _answer(status: int, error: str, **extra) -> JsonResponse:
    return JsonResponse({"ok": False, "error": error, **extra}, status=status)


@csrf_exempt
@cors
async def inbound_webhook(request: HttpRequest, mesh_id: str, secret: str) -> HttpResponse:
    if request.method != "POST":
        return _answer(405, "method not allowed")
    webhook = await sync_to_async(webhook_authenticate)(mesh_id=mesh_id, secret=secret)
    if webhook is None:
        return _answer(401, "unauthorized", code="unauthorized")
    if declared_length(request) > webhook.max_body_bytes:
        return _answer(413, f"payload too large (max {webhook.max_body_bytes} bytes)", code="payload_too_large")
    retry_after = await sync_to_async(over_limit)(scope="webhook", ip=webhook.id, per_minute=webhook.rate_per_minute)
    if retry_after is not None:
        metrics.webhook_requests.labels("rate_limited").inc()
        return rate_limited_response(retry_after)
    body = request.body
    if not webhook_signature_valid(webhook=webhook, body=body, header=request.headers.get("X-Hub-Signature-256")):
        metrics.webhook_requests.labels("bad_signature").inc()
        return _answer(401, "unauthorized: bad or missing X-Hub-Signature-256")
    try:
        data = json_value(request, max_bytes=webhook.max_body_bytes)
    except BadBody as exc:
        if exc.too_large:
            return _answer(413, f"payload too large (max {webhook.max_body_bytes} bytes)", code="payload_too_large")
        return _answer(400, "invalid JSON", code=exc.code)
    if not isinstance(data, (dict, list)):
        return _answer(400, "invalid JSON body", code="not_a_json_object_or_array")
    worker = get_worker()
    await worker.ensure_started()
    started = time.monotonic()
    try:
        outcome = await sync_to_async(webhook_deliver)(webhook=webhook, body=data, worker_id=worker.worker_id)
    except Exception:
        logger.exception("webhook %s delivery failed", webhook.id)
        return _answer(503, "not delivered, retry", code="unavailable")
    if outcome.error is not None:
        return _answer(503, outcome.error, code="unavailable")
    await worker.sends.push_claimed([outcome], [started])
    metrics.webhook_requests.labels("delivered").inc()
    queued = sum(1 for _, state in outcome.reach.recipients.values() if state == QUEUED)
    return JsonResponse({"ok": True, "delivered": len(outcome.reach.claimed), "queued": queued})
