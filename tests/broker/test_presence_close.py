"""The disconnect path keeps what other peers see true: no `peer_left` for a session that is still there, and a
short-lived connection beside a long-lived one does not overwrite the member's saved state."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from django.utils import timezone

from broker.models import PeerState, Presence
from broker.services.presence import presences_expire
from tests.support.sockets import db

pytestmark = pytest.mark.django_db(transaction=True)


def age_lease(presence_id: str) -> None:
    Presence.objects.filter(pk=presence_id).update(last_ping_at=timezone.now() - timedelta(hours=1))


async def test_no_peer_left_for_a_session_that_came_back_on_another_connection(make_member, connect):
    """Given alice's old connection whose lease ran out (its worker died) while alice already came back on a new
    connection, when the sweep closes the old row, then nobody hears `peer_left` for her."""
    alice, bob = await db(make_member)("alice"), await db(make_member)("bob")
    watcher = await connect(bob)
    old = await connect(alice, sessionId="first")
    await watcher.expect_event("peer_joined")
    await connect(alice, sessionId="second")
    await watcher.expect_event("peer_joined")
    old_id = await db(lambda: Presence.objects.get(session_id="first").id)()
    await db(age_lease)(old_id)
    closed = await db(presences_expire)()
    assert closed == []  # closed, but not announced
    assert await db(lambda: Presence.objects.get(pk=old_id).disconnected_at is not None)()
    await watcher.expect_nothing(lambda f: f.get("event") == "peer_left")
    del old


async def test_a_lone_sessions_expiry_is_announced(make_member, connect):
    alice = await db(make_member)("alice")
    await connect(alice, sessionId="only")
    only_id = await db(lambda: Presence.objects.get(session_id="only").id)()
    await db(age_lease)(only_id)
    assert [c.presence_id for c in await db(presences_expire)()] == [only_id]


async def test_a_short_cli_connection_does_not_overwrite_the_long_sessions_saved_state(make_member, connect):
    """Given alice's long-lived session (saved groups: backend), when a CLI connection with other groups comes and
    goes beside it, then the saved groups are still the long-lived session's."""
    alice = await db(make_member)("alice")
    first = await connect(alice, sessionId="long")
    await first.send({"type": "join_group", "name": "backend"})
    await first.send({"type": "list_peers"})
    await first.expect("peers_list")
    await first.disconnect()
    long = await connect(alice, sessionId="long")
    cli_opened = timezone.now()
    cli = await connect(alice, sessionId="cli-1", groups=[{"name": "scratch"}], channel="cli")
    await cli.disconnect()
    for _ in range(200):  # the close path runs after the socket is gone
        if await db(lambda: PeerState.objects.filter(member_id=alice.member.id, last_seen_at__gt=cli_opened).exists())():
            break
        await asyncio.sleep(0.01)
    saved = await db(lambda: PeerState.objects.get(member_id=alice.member.id).groups)()
    assert saved == [{"name": "backend"}]
    assert long.closed is None
