"""Delivering an inbound webhook (protocol.md §6.9): the body becomes one stored message to `*` with
`subtype:"webhook"`, through the normal send path, so every member gets it: live sessions at once (hidden ones and
the webhook's creator too, no grants), offline members from their queue when they come back."""

from __future__ import annotations

import json
from typing import Any

from broker.services.routing import WEBHOOK, Sender, SendInput
from broker.services.sending import SendOutcome, messages_accept
from meshes.models import Webhook
from meshes.services.webhooks import webhook_delivered, webhook_sender_member_id
from protocol.vocabulary import WEBHOOK_SENDER_PREFIX, Priority


def webhook_deliver(*, webhook: Webhook, body: Any, worker_id: str) -> SendOutcome:
    sender = Sender(mesh_id=webhook.mesh_id, member_id=webhook_sender_member_id(webhook),
                    member_pubkey=f"{WEBHOOK_SENDER_PREFIX}{webhook.name}", session_pubkey=None, presence_id="")
    text = json.dumps(body, ensure_ascii=False, separators=(",", ":"))
    [outcome] = messages_accept(
        inputs=[SendInput(sender, "*", Priority.NEXT.value, "", text, client_message_id=None, subtype=WEBHOOK)],
        worker_id=worker_id,
    )
    if outcome.error is None:
        webhook_delivered(webhook=webhook)
    return outcome
