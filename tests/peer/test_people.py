"""Addressing people, not sockets, with the real `claudemesh` command against a real server: offline members by
name or id prefix, `members`, an honest `send`, `message-status` by the short id `send` prints."""

from __future__ import annotations

import pytest

from peer.claude_channels import flags_enable_us
from tests.peer.test_e2e import join_both

pytestmark = pytest.mark.slow


def test_an_offline_member_is_addressed_by_name_and_by_member_id_prefix(e2e_server, make_peer):
    """Given bob joined but is not connected, when alice sends to `bob` and to a prefix of his member id, then both
    are queued for him (and `send` says so), and he reads both, signed by alice, when he connects."""
    alice, bob = join_both(e2e_server, make_peer)
    bob_id = bob.json("whoami")[0]["memberId"]
    by_name = alice.run("send", "bob", "while you were away")
    assert "bob: queued: they are offline and get it when they connect" in by_name.stdout, by_name.stdout
    by_id = alice.json("send", bob_id[:8], "by member id")
    assert by_id["reach"] == {"live": 0, "held": 0, "queued": 1}
    assert by_id["recipients"] == [{"memberId": bob_id, "name": "bob", "state": "queued"}]
    got = {m["plaintext"]: m for m in bob.json("inbox")}
    assert set(got) == {"while you were away", "by member id"}
    assert {m["senderName"] for m in got.values()} == {"alice"}


def test_send_says_delivered_live_or_held_by_status(e2e_server, make_peer):
    alice, bob = join_both(e2e_server, make_peer)
    bob.watch()
    live = alice.run("send", "bob", "are you there")
    assert "✔ bob: delivered to a live session · id " in live.stdout, live.stdout
    bob.run("hook", "dnd")  # what Claude Code's hooks do for bob's long-lived session (same cwd)
    held = alice.run("send", "bob", "when you have a minute")
    assert "✔ bob: held by their status until they are idle" in held.stdout, held.stdout
    urgent = alice.json("send", "bob", "now please", "--priority", "now")
    assert urgent["recipients"][0]["state"] == "live"


def test_members_lists_everyone_with_role_and_online_or_last_seen(e2e_server, make_peer):
    alice, bob = join_both(e2e_server, make_peer)
    listing = alice.run("members").stdout
    assert "members of" in listing
    lines = {line.split()[1]: line.strip() for line in listing.splitlines() if line.strip().startswith(("●", "○"))}
    assert lines["alice"].startswith("●") and "(you)" in lines["alice"]  # this very command's connection
    assert lines["bob"].startswith("○") and "never" in lines["bob"]
    assert {m["displayName"] for m in alice.json("members")["members"]} >= {"alice", "bob"}


def test_message_status_takes_the_short_id_and_prints_words(e2e_server, make_peer):
    alice, bob = join_both(e2e_server, make_peer)
    sent = alice.run("send", "bob", "status check").stdout
    short_id = sent.rsplit("id ", 1)[1].strip()
    assert len(short_id) == 8
    status = alice.run("message-status", short_id).stdout
    assert "delivered to everyone: not yet" in status and "bob (member " in status
    assert "True" not in status and "False" not in status
    bob.json("inbox")
    assert "delivered to everyone: yes" in alice.run("message-status", short_id).stdout
    unknown = alice.run("message-status", "zzzzzzzz", check=False)
    assert unknown.returncode == 5 and "not found" in unknown.stderr


@pytest.mark.parametrize(("args", "shown"), [
    (["claude", "--dangerously-load-development-channels", "server:claudemesh"], True),
    (["claude", "--dangerously-load-development-channels=server:other,server:claudemesh"], True),
    (["claude", "--channels", "plugin:claudemesh@market"], True),
    (["claude", "--dangerously-load-development-channels", "server:other"], False),
    (["claude"], False),
    (["claude", "server:claudemesh"], False),
])
def test_channel_pushes_count_as_read_only_under_a_claude_that_shows_them(args, shown):
    assert flags_enable_us(args) is shown
