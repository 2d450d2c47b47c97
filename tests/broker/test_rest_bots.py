"""REST for bots: a key bound to the bot's member posts envelopes it built (to a topic, to a member) through the
broker's send path, reads its inbox with a cursor and acknowledges it, lists peers, topics and history; keys
without the capability, out of their topic scope or bound to no member are refused with a stable `code`."""

from __future__ import annotations

import json

import pytest
from django.test import AsyncClient

from meshes import selectors, services
from meshes.models import TopicMessage
from tests.support.sockets import db

pytestmark = pytest.mark.django_db(transaction=True)


def _key(mesh, member=None, capabilities=("send", "read"), **kwargs) -> str:
    actor = selectors.actor_for_user(mesh_id=mesh.id, user=mesh.owner)
    _, secret = services.api_key_create(actor=actor, label="bot", capabilities=list(capabilities),
                                        member_id=member.id if member else None, **kwargs)
    return secret


async def _call(method: str, path: str, secret: str, body=None, headers=None):
    client = AsyncClient()
    data = json.dumps(body) if body is not None else ""
    return await client.generic(method, path, data=data, content_type="application/json",
                                headers={"Authorization": f"Bearer {secret}", **(headers or {})})


async def test_a_bot_posts_to_a_topic_and_a_member_gets_it_live_and_in_history(make_member, connect, mesh):
    bot, alice = await db(make_member)("ci-bot"), await db(make_member)("alice")
    secret = await db(_key)(mesh, bot.member)
    sock = await connect(alice)
    posted = await _call("POST", "/api/v1/topics/general/messages", secret,
                         {"nonce": "bm9uY2U=", "ciphertext": "Q01TMWNpcGhlcnRleHQ=", "priority": "now"})
    assert posted.status_code == 201, posted.content
    answer = posted.json()
    assert answer["topic"] == "general" and answer["targetSpec"] == f"#{answer['topicId']}"
    push = await sock.expect_push(answer["messageId"])
    assert push["senderPubkey"] == bot.pubkey and push["ciphertext"] == "Q01TMWNpcGhlcnRleHQ="
    history = (await _call("GET", "/api/v1/topics/general/messages?limit=10", secret)).json()
    assert [m["id"] for m in history["messages"]] == [answer["messageId"]]
    assert history["messages"][0]["senderPubkey"] == bot.pubkey and history["nextBefore"] is None
    assert await db(TopicMessage.objects.filter(id=answer["messageId"]).exists)()
    topics = (await _call("GET", "/api/v1/topics", secret)).json()["topics"]
    assert [t["name"] for t in topics] == ["general"]
    peers = (await _call("GET", "/api/v1/peers", secret)).json()["peers"]
    assert [p["displayName"] for p in peers] == ["alice"] and peers[0]["pubkey"] == alice.pubkey


async def test_a_bot_reads_its_dm_inbox_until_it_acknowledges(make_member, connect, mesh):
    bot, alice = await db(make_member)("helper"), await db(make_member)("alice")
    secret = await db(_key)(mesh, bot.member)
    sock = await connect(alice)
    ids = []
    for n in range(3):
        await sock.send({"type": "send", "targetSpec": bot.pubkey, "nonce": f"n{n}", "ciphertext": f"c{n}",
                         "priority": "next"})
        ack = await sock.expect(lambda f: f.get("type") == "ack")
        ids.append(ack["messageId"])
    first = (await _call("GET", "/api/v1/messages?limit=2", secret)).json()
    assert [m["messageId"] for m in first["messages"]] == ids[:2] and first["nextCursor"] is not None
    assert first["messages"][0]["senderPubkey"] == alice.pubkey
    rest = (await _call("GET", f"/api/v1/messages?after={first['nextCursor']}", secret)).json()
    assert [m["messageId"] for m in rest["messages"]] == ids[2:] and rest["nextCursor"] is None
    # nothing is lost between polls: unacknowledged messages are still there
    again = (await _call("GET", "/api/v1/messages", secret)).json()
    assert [m["messageId"] for m in again["messages"]] == ids
    acked = await _call("POST", "/api/v1/messages/ack", secret, {"ids": ids[:2]})
    assert acked.json() == {"acked": 2}
    assert [m["messageId"] for m in (await _call("GET", "/api/v1/messages", secret)).json()["messages"]] == ids[2:]
    # and a bot answers a DM with an envelope it built for alice's key
    reply = await _call("POST", "/api/v1/messages", secret, {"targetSpec": alice.pubkey, "nonce": "n", "ciphertext": "c"})
    assert reply.status_code == 201
    assert (await sock.expect_push(reply.json()["messageId"]))["senderPubkey"] == bot.pubkey


async def test_refusals_have_stable_codes(make_member, mesh):
    bot = await db(make_member)("bot")
    read_only = await db(_key)(mesh, bot.member, capabilities=("read",))
    refused = await _call("POST", "/api/v1/topics/general/messages", read_only, {"nonce": "n", "ciphertext": "c"})
    assert refused.status_code == 403 and refused.json()["code"] == "api_key_missing_capability"
    scoped = await db(_key)(mesh, bot.member, topic_scopes=["deploys"])
    out = await _call("POST", "/api/v1/topics/general/messages", scoped, {"nonce": "n", "ciphertext": "c"})
    assert out.status_code == 403 and out.json()["code"] == "api_key_topic_out_of_scope"
    assert (await _call("GET", "/api/v1/topics/general/messages", scoped)).json()["code"] == "api_key_topic_out_of_scope"
    assert (await _call("POST", "/api/v1/messages", scoped, {"targetSpec": "*", "nonce": "n", "ciphertext": "c"})
            ).status_code == 403
    unbound = await db(_key)(mesh, None)
    lone = await _call("POST", "/api/v1/topics/general/messages", unbound, {"nonce": "n", "ciphertext": "c"})
    assert lone.status_code == 409 and lone.json()["code"] == "api_key_unbound"
    full = await db(_key)(mesh, bot.member)
    missing = await _call("POST", "/api/v1/topics/nope/messages", full, {"nonce": "n", "ciphertext": "c"})
    assert missing.status_code == 404 and missing.json()["code"] == "topic_not_found"
    bad = await _call("POST", "/api/v1/messages", full, {"targetSpec": "*", "nonce": "n"})
    assert bad.status_code == 422 and bad.json()["code"]
    assert (await _call("GET", "/api/v1/messages?after=x", full)).status_code == 422
    assert (await _call("GET", "/api/v1/stream", "cm_" + "x" * 43)).status_code == 401
