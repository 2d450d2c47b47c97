"""Inbound webhooks (protocol.md §5.15, §6.9): managers create, list and delete them over the socket; a POST to the
URL reaches every member, live (hidden sessions too) or from its queue later, as §6.9's push; a wrong secret or
HMAC is 401, a flood 429, a bad body 400 or 413."""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest
from django.test import AsyncClient

from meshes.models import AuditEvent, Role
from tests.support.sockets import db

pytestmark = pytest.mark.django_db(transaction=True)


async def request(sock, frame: dict, reply_type: str) -> dict:
    req_id = f"r-{frame['type']}"
    await sock.send({**frame, "_reqId": req_id})
    return await sock.expect(lambda f: f.get("_reqId") == req_id and f["type"] in (reply_type, "error"))


def path_of(url: str) -> str:
    return "/hook/" + url.split("/hook/", 1)[1]


async def post(path: str, body: bytes, signature: str | None = None):
    headers = {"X-Hub-Signature-256": signature} if signature else {}
    return await AsyncClient().post(path, body, content_type="application/json", headers=headers)


async def test_managers_create_list_and_delete_webhooks_with_the_spec_replies(make_member, connect):
    admin, bob = await db(make_member)("admin", Role.ADMIN), await db(make_member)("bob")
    a, b = await connect(admin), await connect(bob)
    created = await request(a, {"type": "create_webhook", "name": "ci"}, "webhook_ack")
    assert created["name"] == "ci" and len(created["secret"]) == 64
    assert created["url"].endswith(f"/hook/{admin.member.mesh_id}/{created['secret']}")
    again = await request(a, {"type": "create_webhook", "name": "ci"}, "webhook_ack")
    assert (again["code"], again["message"]) == ("webhook_exists", 'Webhook "ci" already exists in this mesh')
    nameless = await request(a, {"type": "create_webhook", "name": " "}, "webhook_ack")
    assert (nameless["code"], nameless["message"]) == ("invalid_webhook", "name is required")
    assert (await request(b, {"type": "create_webhook", "name": "mine"}, "webhook_ack"))["code"] == "forbidden"
    assert (await request(b, {"type": "list_webhooks"}, "webhook_list"))["code"] == "forbidden"
    listed = (await request(a, {"type": "list_webhooks"}, "webhook_list"))["webhooks"]
    assert [(w["name"], w["url"], w["active"], w["signed"]) for w in listed] == [("ci", created["url"], True, False)]
    deleted = await request(a, {"type": "delete_webhook", "name": "ci"}, "webhook_ack")
    assert {k: deleted[k] for k in ("name", "url", "secret")} == {"name": "ci", "url": "", "secret": ""}
    assert (await post(path_of(created["url"]), b"{}")).status_code == 401
    assert (await request(a, {"type": "list_webhooks"}, "webhook_list"))["webhooks"] == []
    taken = await request(a, {"type": "create_webhook", "name": "ci"}, "webhook_ack")
    assert taken["code"] == "webhook_exists"  # §5.15: names stay taken after deletion
    assert await db(AuditEvent.objects.filter(event_type__in=["webhook_created", "webhook_deleted"]).count)() == 2


async def test_a_post_reaches_live_hidden_and_offline_members_as_the_spec_push(make_member, connect):
    admin, alice, bob = await db(make_member)("admin", Role.ADMIN), await db(make_member)("alice"), await db(make_member)("bob")
    a, al = await connect(admin), await connect(alice)
    await al.send({"type": "set_visible", "visible": False})
    created = await request(a, {"type": "create_webhook", "name": "deploys"}, "webhook_ack")
    body = {"ref": "main", "status": "green", "runs": [1, 2]}
    response = await post(path_of(created["url"]), json.dumps(body).encode())
    assert response.status_code == 200 and response.json() == {"ok": True, "delivered": 2, "queued": 1}
    for sock in (a, al):  # the creator and a hidden session too
        push = await sock.expect(lambda f: f.get("subtype") == "webhook")
        assert {k: push[k] for k in ("event", "eventData", "senderPubkey", "priority", "nonce", "ciphertext")} == {
            "event": "deploys", "eventData": body, "senderPubkey": "webhook:deploys", "priority": "next",
            "nonce": "", "ciphertext": "",
        }
        assert push["meshId"] == admin.member.mesh_id and push["createdAt"].endswith("Z") and push["messageId"]
    b = await connect(bob)  # offline at the POST: it waited in bob's queue
    queued = await b.expect(lambda f: f.get("subtype") == "webhook")
    assert queued["eventData"] == body and queued["event"] == "deploys"
    listed = await post(path_of(created["url"]), b"[1, 2, 3]")  # arrays are bodies too
    assert listed.status_code == 200
    assert (await b.expect(lambda f: f.get("subtype") == "webhook"))["eventData"] == [1, 2, 3]


async def test_wrong_secrets_and_signatures_are_401_and_bad_bodies_400_or_413(make_member, connect):
    admin = await db(make_member)("admin", Role.ADMIN)
    a = await connect(admin)
    signed = await request(a, {"type": "create_webhook", "name": "github", "signed": True}, "webhook_ack")
    path, key = path_of(signed["url"]), signed["signingSecret"]
    body = b'{"action": "opened"}'
    wrong_secret = path.rsplit("/", 1)[0] + "/" + "0" * 64
    assert {k: v for k, v in (await post(wrong_secret, body)).json().items() if k != "code"} == {
        "ok": False, "error": "unauthorized"}
    assert (await post(wrong_secret, body)).status_code == 401
    assert (await post(path, body)).status_code == 401  # no signature
    forged = "sha256=" + hmac.new(b"not the key", body, hashlib.sha256).hexdigest()
    assert (await post(path, body, signature=forged)).status_code == 401
    good = "sha256=" + hmac.new(key.encode(), body, hashlib.sha256).hexdigest()
    assert (await post(path, body, signature=good)).status_code == 200
    assert (await a.expect(lambda f: f.get("subtype") == "webhook"))["eventData"] == {"action": "opened"}
    plain = await request(a, {"type": "create_webhook", "name": "plain", "maxBodyBytes": 2048}, "webhook_ack")
    plain_path = path_of(plain["url"])
    assert (await post(plain_path, b"{not json")).json()["error"] == "invalid JSON"
    scalar = (await post(plain_path, b"42")).json()
    assert (scalar["ok"], scalar["error"]) == (False, "invalid JSON body")
    assert (await post(plain_path, b"null")).status_code == 400
    assert (await post(plain_path, json.dumps({"x": "y" * 4096}).encode())).status_code == 413


async def test_a_flood_of_posts_is_rate_limited_per_webhook(make_member, connect):
    admin = await db(make_member)("admin", Role.ADMIN)
    a = await connect(admin)
    hook = await request(a, {"type": "create_webhook", "name": "noisy", "ratePerMinute": 3}, "webhook_ack")
    other = await request(a, {"type": "create_webhook", "name": "quiet"}, "webhook_ack")
    codes = [(await post(path_of(hook["url"]), b"{}")).status_code for _ in range(5)]
    assert codes == [200, 200, 200, 429, 429]
    limited = await post(path_of(hook["url"]), b"{}")
    assert limited.json()["code"] == "rate_limited" and int(limited["Retry-After"]) >= 1
    assert (await post(path_of(other["url"]), b"{}")).status_code == 200  # the limit is per webhook
