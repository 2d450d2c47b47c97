"""Target resolution (names, pubkeys, prefixes, groups, ambiguity) and the durable inbox."""

from __future__ import annotations

import pytest

from peer.inbox import Inbox, InboxMessage
from peer.targets import TargetError, resolve_target

A = "a" * 63 + "1"
A2 = "a" * 63 + "2"
B = "b" * 64
ME = "c" * 64
PEERS = [
    {"pubkey": A, "memberPubkey": "1" * 64, "displayName": "Alice"},
    {"pubkey": A2, "memberPubkey": "2" * 64, "displayName": "alice"},
    {"pubkey": B, "memberPubkey": "3" * 64, "displayName": "Bob"},
    {"pubkey": ME, "memberPubkey": "4" * 64, "displayName": "Bob"},
]


MEMBERS = [
    {"memberId": "M1aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "pubkey": "1" * 64, "displayName": "Alice", "online": True},
    {"memberId": "M2bbbbbbbbbbbbbbbbbbbbbbbbbbbbbb", "pubkey": "2" * 64, "displayName": "alice", "online": True},
    {"memberId": "M3cccccccccccccccccccccccccccccc", "pubkey": "3" * 64, "displayName": "Bob", "online": True},
    {"memberId": "Z9dddddddddddddddddddddddddddddd", "pubkey": "5" * 64, "displayName": "dave", "online": False},
]


def test_session_name_is_case_insensitive_skips_self_and_seals_to_the_member_key():
    target = resolve_target("bob", PEERS, own_session_pubkey=ME)
    assert (target.spec, target.seal_to) == (B, "3" * 64)


def test_duplicate_names_are_an_error_listing_candidates():
    with pytest.raises(TargetError) as info:
        resolve_target("ALICE", PEERS, own_session_pubkey=ME)
    assert info.value.kind == "ambiguous" and A[:12] in str(info.value) and A2[:12] in str(info.value)
    with pytest.raises(TargetError) as info:
        resolve_target("alice", PEERS, MEMBERS, own_session_pubkey=ME)
    assert info.value.kind == "ambiguous" and "member M1aaaaaa" in str(info.value) and "member M2bbbbbb" in str(info.value)


def test_an_offline_member_is_addressed_by_name_member_id_prefix_or_pubkey_prefix():
    for to in ("dave", "DAVE", "Z9dddd", "Z9dddddddd", "5555"):
        target = resolve_target(to, PEERS, MEMBERS)
        assert (target.spec, target.seal_to, target.multicast) == ("5" * 64, "5" * 64, False), to


def test_a_member_name_goes_to_the_member_not_one_of_its_sessions():
    assert resolve_target("bob", PEERS, MEMBERS, own_session_pubkey=ME).spec == "3" * 64


def test_several_sessions_of_one_member_address_the_member():
    sessions = [{"pubkey": "e" * 64, "memberPubkey": "3" * 64, "displayName": "laptop"},
                {"pubkey": "f" * 64, "memberPubkey": "3" * 64, "displayName": "laptop"}]
    assert resolve_target("laptop", sessions, MEMBERS).spec == "3" * 64
    one_shot = [sessions[0], {**sessions[1], "channel": "claudemesh-cli"}]
    assert resolve_target("laptop", one_shot, MEMBERS).spec == "e" * 64  # the long-lived one


def test_pubkey_prefix_unique_and_ambiguous():
    assert resolve_target("bbbb", PEERS).spec == B
    assert resolve_target("3333", PEERS).spec == B  # a member key prefix with no roster: its live session
    assert resolve_target("3333", PEERS, MEMBERS).spec == "3" * 64
    with pytest.raises(TargetError) as info:
        resolve_target("aaaa", PEERS)
    assert info.value.kind == "ambiguous"
    with pytest.raises(TargetError) as info:
        resolve_target("M1zzzz", PEERS, MEMBERS)
    assert info.value.kind == "not_found"


def test_full_pubkey_passes_through_lowercased():
    assert resolve_target("D" * 64, PEERS).spec == "d" * 64


@pytest.mark.parametrize(("to", "spec", "group"), [("*", "*", None), ("@all", "@all", None), ("@ALL", "@all", None),
                                                     ("@backend", "@backend", "backend")])
def test_multicast_targets(to, spec, group):
    target = resolve_target(to, [])
    assert (target.spec, target.multicast, target.group) == (spec, True, group)


@pytest.mark.parametrize(("to", "kind"), [("nobody", "not_found"), ("@", "invalid"), ("#topic", "invalid"),
                                          ("", "invalid"), ("eeee", "not_found")])
def test_bad_targets(to, kind):
    with pytest.raises(TargetError) as info:
        resolve_target(to, PEERS, MEMBERS)
    assert info.value.kind == kind
    if kind == "not_found":
        assert "dave (member Z9dddddd, offline)" in str(info.value)


def message(message_id: str) -> InboxMessage:
    return InboxMessage(mesh_id="m", mesh_slug="team", message_id=message_id, sender_pubkey=A, sender_name="Alice",
                        priority="next", kind="direct", plaintext="hi", failure=None, nonce="n", ciphertext="c",
                        created_at="2026-01-01T00:00:00.000Z", received_at="2026-01-01T00:00:01.000Z")


def test_inbox_dedupes_redeliveries_and_survives_reopen(tmp_path):
    inbox = Inbox(tmp_path)
    assert inbox.add(message("x1")) is True
    assert inbox.add(message("x1")) is False
    assert inbox.add(message("x2")) is True
    inbox.close()
    reopened = Inbox(tmp_path)
    unread = reopened.unread()
    assert [m.message_id for m in unread] == ["x1", "x2"]
    reopened.mark_read(unread[:1], "2026-01-01T00:00:02.000Z")
    assert [m.message_id for m in reopened.unread("team")] == ["x2"]
    assert len(reopened.all()) == 2
    assert (tmp_path / "inbox.sqlite3").stat().st_mode & 0o777 == 0o600


def test_session_slots_are_stable_across_restarts_and_distinct_when_concurrent(tmp_path):
    from peer.session_slots import claim_slot

    first = claim_slot(tmp_path, "team", "member1")
    second = claim_slot(tmp_path, "team", "member1")
    assert first.keypair.public_hex != second.keypair.public_hex
    assert first.session_id != second.session_id
    key, session_id = first.keypair.public_hex, first.session_id
    first.release()
    again = claim_slot(tmp_path, "team", "member1")
    assert (again.keypair.public_hex, again.session_id) == (key, session_id)
    assert all(p.stat().st_mode & 0o777 == 0o600 for p in (tmp_path / "sessions").glob("*.json"))
    again.release()
    second.release()
