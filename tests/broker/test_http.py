"""HTTP on the broker port: /health, /health/ready, /metrics, /hook/set-status, live.json, bench_roster."""

from __future__ import annotations

import json

import pytest
from django.core.management import call_command

from broker.models import PendingHookStatus, Presence
from tests.support.sockets import db

pytestmark = pytest.mark.django_db(transaction=True)


def test_health_and_ready(client):
    response = client.get("/health")
    body = response.json()
    assert response.status_code == 200 and body["status"] == "ok" and body["db"] == "up"
    assert body["version"] == "0.1.0" and isinstance(body["uptime"], int)
    assert response["Access-Control-Allow-Origin"] == "*"
    ready = client.get("/health/ready")
    assert ready.status_code == 200 and ready.json()["status"] == "ready"
    assert client.options("/health").status_code == 204


def test_ready_reports_db_down(client, monkeypatch):
    from broker import views

    monkeypatch.setattr(views, "_db_up", lambda: False)
    response = client.get("/health/ready")
    assert response.status_code == 503 and response.json() == {"status": "not_ready", "reason": "db_down"}
    assert client.get("/health").json()["db"] == "down"


def test_metrics(client):
    response = client.get("/metrics")
    assert response.status_code == 200 and response["Content-Type"].startswith("text/plain")
    text = response.content.decode()
    for name in ("broker_connections_total", "broker_messages_rejected_total", "broker_queue_depth", "broker_delivery_latency_seconds_bucket"):
        assert name in text


def test_hook_validation(client):
    post = lambda body, **kw: client.post("/hook/set-status", data=body, content_type="application/json", **kw)  # noqa: E731
    assert post(json.dumps({"cwd": "/x"})).json() == {"ok": False, "error": "cwd and status required"}
    assert post("x" * 70_000).status_code == 413
    assert post("{nope").status_code == 400
    body = post(json.dumps({"cwd": "/nobody", "status": "working", "pid": 7})).json()
    assert body == {"ok": True, "pending": True}
    assert PendingHookStatus.objects.filter(cwd="/nobody", pid=7).exists()


def test_hook_rate_limit(client):
    codes = [
        client.post("/hook/set-status", data=json.dumps({"cwd": "/rl", "status": "idle", "pid": 99}), content_type="application/json").status_code
        for _ in range(31)
    ]
    assert codes[:30] == [200] * 30 and codes[30] == 429


async def test_hook_sets_status_and_drains_held_messages(make_member, connect, async_client):
    alice = await db(make_member)("alice")
    bob = await db(make_member)("bob")
    a = await connect(alice)
    b = await connect(bob, pid=555, cwd="/work/bob")
    response = await async_client.post("/hook/set-status", data={"cwd": "/work/bob", "status": "working", "pid": 555}, content_type="application/json")
    body = response.json()
    assert body == {"ok": True}  # applied; anonymous callers never see presence ids
    await a.send({"type": "send", "id": "h", "targetSpec": bob.pubkey, "priority": "next", "nonce": "n", "ciphertext": "held"})
    ack = await a.expect("ack")
    await b.expect_nothing(lambda f: f.get("messageId") == ack["messageId"])
    await async_client.post("/hook/set-status", data={"cwd": "/work/bob", "status": "idle", "pid": 555}, content_type="application/json")
    assert (await b.expect_push(ack["messageId"]))["ciphertext"] == "held"


async def test_pending_hook_status_applies_at_hello(make_member, connect, async_client):
    bob = await db(make_member)("bob")
    await async_client.post("/hook/set-status", data={"cwd": "/later", "status": "working", "pid": 9}, content_type="application/json")
    b = await connect(bob, pid=9, cwd="/later")
    await b.send({"type": "list_peers"})
    [me] = (await b.expect("peers_list"))["peers"]
    assert me["status"] == "working"
    row = await db(lambda: Presence.objects.get(cwd="/later"))()
    assert row.status_source == "hook"


async def test_live_json_for_members_only(make_member, connect, async_client, owner, make_user):
    alice = await db(make_member)("alice")
    await connect(alice, displayName="alice-live")
    await db(async_client.force_login)(owner)
    response = await async_client.get(f"/meshes/{alice.member.mesh_id}/live.json")
    assert response.status_code == 200
    [peer] = response.json()["peers"]
    assert peer["name"] == "alice-live" and peer["status"] == "idle" and peer["connectedAt"].endswith("Z")
    stranger = await db(make_user)("stranger@example.test")
    await db(async_client.force_login)(stranger)
    assert (await async_client.get(f"/meshes/{alice.member.mesh_id}/live.json")).status_code == 404


def test_bench_roster(tmp_path):
    from meshes.models import Member
    from protocol.crypto import SigningKeypair

    out = tmp_path / "roster.json"
    call_command("bench_roster", "--peers", "5", "--out", str(out))
    roster = json.loads(out.read_text())
    assert set(roster) == {"meshId", "members", "brokerUrl"}
    assert len(roster["members"]) == 5
    for entry in roster["members"]:
        assert SigningKeypair.from_secret_hex(entry["secretKey"]).public_hex == entry["pubkey"]
        assert Member.objects.get(pk=entry["memberId"]).pubkey == entry["pubkey"]
