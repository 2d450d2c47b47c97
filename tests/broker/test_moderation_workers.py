"""Kick, disconnect, ban and unban across two real server processes (Postgres + Redis): an admin on one worker
closes sockets held by the other with §2.10's close codes, seen by a real WebSocket client, and a banned member's
next hello fails with `revoked` + 4002 on either worker until the ban is lifted."""

from __future__ import annotations

import pytest

from tests.broker.test_multiworker import (  # noqa: F401  (fixtures)
    DATABASE_URL,
    REDIS_URL,
    channel_layer_urls,
    cluster,
    e2e_database,
    wait_until,
)
from tests.support.e2e import E2EPeer
from tests.support.servers import manage

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not (DATABASE_URL.startswith("postgres") and REDIS_URL),
                       reason="needs DATABASE_URL (Postgres) and REDIS_URL: workers share both"),
]


async def test_an_admin_on_one_worker_kicks_disconnects_and_bans_sessions_on_the_other(cluster):  # noqa: F811
    start, roster = cluster
    w1, w2 = start()
    admin, bob, carol, dave = roster(4)
    manage(w1.env, "shell", "-c", f"from meshes.models import Member; Member.objects.filter(pk={admin.member_id!r}).update(role='admin')")
    a, b, c, d = E2EPeer(admin, w1.ws_url), E2EPeer(bob, w2.ws_url), E2EPeer(carol, w2.ws_url), E2EPeer(dave, w2.ws_url)
    for peer in (a, b, c, d):
        await peer.connect()

    # a member may not
    refused = await b.request({"type": "kick", "target": carol.pubkey}, "error")
    assert (refused["code"], refused["message"]) == ("forbidden", "only owner or admin can kicked")

    kicked = await a.request({"type": "kick", "target": bob.pubkey}, "kick_ack")
    assert kicked["kicked"] == ["peer-1"]
    await wait_until(lambda: _closed(b))
    assert b.close_code == 4001
    left = await d.expect(lambda f: f.get("event") == "peer_left" and f["eventData"]["pubkey"] == bob.pubkey)
    assert left["eventData"]["name"] == "peer-1"

    gone = await a.request({"type": "disconnect", "target": dave.pubkey[:12]}, "disconnect_ack")
    assert gone["kicked"] == ["peer-3"]
    await wait_until(lambda: _closed(d))
    assert d.close_code == 1000

    banned = await a.request({"type": "ban", "target": carol.pubkey}, "ban_ack")
    assert banned["banned"] == "peer-2"
    await wait_until(lambda: _closed(c))
    assert c.close_code == 4002
    for url in (w1.ws_url, w2.ws_url):
        again = E2EPeer(carol, url)
        with pytest.raises(AssertionError):
            await again.connect(timeout=5)
        assert any(f.get("code") == "revoked" for f in again.frames) and again.close_code == 4002

    await a.request({"type": "unban", "target": carol.pubkey}, "unban_ack")
    back = E2EPeer(carol, w2.ws_url)
    await back.connect()
    for peer in (a, back):
        await peer.close()


async def _closed(peer: E2EPeer) -> bool:
    return peer.closed.is_set()
