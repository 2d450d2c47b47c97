"""`create_webhook`, `list_webhooks`, `delete_webhook` (protocol.md §5.15), owners and admins only: the URL carries
the secret that lets anyone holding it post into the mesh."""

from __future__ import annotations

from typing import Any

from broker.handlers.registry import handler, run_for_member
from meshes import selectors as mesh_selectors
from meshes.actors import Actor
from meshes.services.webhooks import webhook_create, webhook_delete, webhook_url
from protocol.encoding import iso_or_none


def _create(actor: Actor, frame: dict[str, Any]) -> dict[str, Any]:
    webhook, signing_secret = webhook_create(actor=actor, name=frame.get("name"), signed=frame.get("signed") is True,
                                             rate_per_minute=frame.get("ratePerMinute"),
                                             max_body_bytes=frame.get("maxBodyBytes"))
    reply = {"type": "webhook_ack", "name": webhook.name, "url": webhook_url(webhook), "secret": webhook.secret()}
    if signing_secret:
        reply["signingSecret"] = signing_secret  # additive: shown once, for the sender's HMAC
    return reply


def _list(actor: Actor, frame: dict[str, Any]) -> dict[str, Any]:
    return {"type": "webhook_list", "webhooks": [
        {"name": w.name, "url": webhook_url(w), "active": True, "createdAt": iso_or_none(w.created_at),
         "signed": w.signed, "deliveries": w.delivery_count, "lastDeliveryAt": iso_or_none(w.last_delivery_at)}
        for w in mesh_selectors.webhooks_for_manager(actor=actor)
    ]}


def _delete(actor: Actor, frame: dict[str, Any]) -> dict[str, Any]:
    webhook_delete(actor=actor, name=frame.get("name"))
    return {"type": "webhook_ack", "name": frame.get("name") if isinstance(frame.get("name"), str) else "",
            "url": "", "secret": ""}


@handler("create_webhook")
async def handle_create_webhook(conn, frame) -> None:
    await run_for_member(conn, frame, _create)


@handler("list_webhooks")
async def handle_list_webhooks(conn, frame) -> None:
    await run_for_member(conn, frame, _list)


@handler("delete_webhook")
async def handle_delete_webhook(conn, frame) -> None:
    await run_for_member(conn, frame, _delete)
