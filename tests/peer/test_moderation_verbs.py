"""`claudemesh kick|disconnect|ban|unban|bans` and `grant|revoke|block|grants` against a real server process: an
admin closes a member's watch for good and bans another, a member may not, and a recipient's block stops a
sender's messages until it grants them again."""

from __future__ import annotations

import json

import pytest

from tests.peer.test_topic_verbs import join

pytestmark = pytest.mark.slow


def promote(e2e_server, name: str) -> None:
    e2e_server.shell("from meshes.models import Member; "
                     f"Member.objects.filter(display_name={name!r}, revoked_at=None).update(role='admin')")


def test_an_admin_kicks_a_watch_bans_and_unbans_and_a_member_may_not(e2e_server, make_peer):
    alice, bob, carol = (join(e2e_server, make_peer, name) for name in ("alice", "bob", "carol"))
    promote(e2e_server, "alice")
    watch = bob.watch()
    refused = carol.run("kick", "bob", check=False)
    assert refused.returncode == 7 and "only owner or admin" in refused.stderr
    assert alice.json("kick", "bob") == {"kicked": ["bob"]}
    assert watch.wait(timeout=20) != 0  # 4001 is terminal: the watch stops instead of reconnecting
    assert alice.json("ban", "carol") == {"banned": "carol"}
    shut_out = carol.run("send", "alice", "let me in", check=False)
    assert shut_out.returncode != 0 and "banned" in (shut_out.stderr + shut_out.stdout).lower()
    bans = alice.json("bans")["bans"]
    assert [b["name"] for b in bans] == ["carol"]
    assert alice.json("unban", "carol") == {"unbanned": "carol"}
    assert carol.json("send", "alice", "thanks")["messageId"]
    assert alice.json("bans") == {"bans": []}
    assert "no banned members" in alice.run("bans").stdout


def test_a_block_stops_a_sender_until_the_recipient_grants_dm_again(e2e_server, make_peer):
    alice, bob = join(e2e_server, make_peer, "alice"), join(e2e_server, make_peer, "bob")
    blocked = bob.json("block", "alice")
    assert blocked["grants"] == [] and len(blocked["pubkey"]) == 64
    refused = alice.run("send", "bob", "hello?", "--json", check=False)
    assert refused.returncode != 0 and "blocked by recipient grants" in refused.stdout + refused.stderr
    listed = bob.json("grants")
    assert listed["schema_version"] == "1.0" and listed["grants"] == {blocked["pubkey"]: []}
    assert bob.json("grant", "alice", "dm")["grants"] == ["dm"]
    assert alice.json("send", "bob", "hello again")["messageId"]
    bob.run("inbox", "--wait", "2")
    assert "hello again" in bob.inbox_texts() and "hello?" not in bob.inbox_texts()
    assert bob.json("revoke", "alice", "all")["grants"] == []
    bad = bob.run("grant", "alice", "teleport", check=False)
    assert bad.returncode == 3 and "teleport" in bad.stderr
    assert json.loads(bob.run("grants", "--json").stdout)["grants"][blocked["pubkey"]] == []
