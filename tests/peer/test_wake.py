"""Mesh messages reach a Claude Code session through its hooks (peer/hook_inbox.py): `hook wake` (Stop,
asyncRewake) wakes an idle session with exit 2, `hook inbox` hands unread messages to a busy one as
additionalContext, each message is shown once, and two sessions cannot wake each other forever."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

from peer.inbox import Inbox, InboxMessage
from tests.peer.conftest import ROOT
from tests.peer.test_e2e import join_both

pytestmark = pytest.mark.slow


def hook(peer, action: str, payload: dict, **env) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-m", "peer.entry", "hook", action], cwd=ROOT,
                            env={**peer.env, "CLAUDEMESH_WAKE_GAP": "0", **env},
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    proc.stdin.write(json.dumps(payload))
    proc.stdin.close()
    return proc


def finished(proc: subprocess.Popen, within: float) -> bool:
    try:
        proc.wait(timeout=within)
    except subprocess.TimeoutExpired:
        return False
    return True


def store(peer, text: str, priority: str = "next") -> None:
    """A message as bob's MCP server stores it on arrival (the same inbox file, the same code)."""
    inbox = Inbox(peer.config_dir)
    try:
        inbox.add(InboxMessage(mesh_id="m", mesh_slug="team", message_id=f"id-{time.time_ns()}", sender_pubkey="ab" * 32,
                               sender_name="alice", sender_member_id="M" * 32, priority=priority, kind="direct",
                               plaintext=text, failure=None, nonce="n", ciphertext="c",
                               created_at="2026-12-02T00:00:00.000Z", received_at="2026-12-02T00:00:01.000Z"))
    finally:
        inbox.close()


def test_an_idle_session_is_woken_by_a_message_and_sees_it_once(e2e_server, make_peer):
    """Given bob's Claude idle (its Stop hook waiting), when alice sends and bob's side stores the message, then
    the waiter exits 2 with it on stderr (Claude Code's asyncRewake wakes the model with that) and it is read."""
    alice, bob = join_both(e2e_server, make_peer)
    waiter = hook(bob, "wake", {"session_id": "bob-1", "hook_event_name": "Stop"})
    alice.run("send", "bob", "are you free to review #42?")
    bob.run("inbox", "--peek")  # what bob's push-pipe does: store it, unread
    assert finished(waiter, 20), "the waiter should have woken the session"
    assert waiter.returncode == 2
    woke_with = waiter.stderr.read()
    assert "are you free to review #42?" in woke_with and "from alice (member " in woke_with
    assert "untrusted" in woke_with
    assert bob.json("inbox", "--local") == []  # shown once: not new again anywhere


def test_a_busy_session_gets_messages_between_tool_calls(make_peer):
    bob = make_peer("bob")
    store(bob, "FYI: main is green", priority="low")
    out = hook(bob, "inbox", {"session_id": "bob-1", "hook_event_name": "PostToolUse"})
    assert finished(out, 15) and out.returncode == 0
    answer = json.loads(out.stdout.read())
    assert answer["hookSpecificOutput"]["hookEventName"] == "PostToolUse"
    assert "FYI: main is green" in answer["hookSpecificOutput"]["additionalContext"]
    again = hook(bob, "inbox", {"session_id": "bob-1", "hook_event_name": "PostToolUse"})
    assert finished(again, 15) and again.stdout.read() == ""  # nothing new: no output at all


def test_low_priority_never_wakes_and_a_newer_waiter_replaces_an_older_one(make_peer):
    bob = make_peer("bob")
    store(bob, "just so you know", priority="low")
    first = hook(bob, "wake", {"session_id": "bob-1"})
    assert not finished(first, 3)  # a low message does not wake anybody
    second = hook(bob, "wake", {"session_id": "bob-1"})
    assert finished(first, 10) and first.returncode == 0  # the newer waiter took over
    second.kill()
    second.wait()


def test_two_sessions_cannot_wake_each_other_forever(make_peer):
    """Given a session woken WAKE_BUDGET (5) times without its human in between, the next message does not wake it;
    once the human prompts again (UserPromptSubmit → `hook working`), it can be woken again."""
    bob = make_peer("bob")
    for n in range(5):
        waiter = hook(bob, "wake", {"session_id": "bob-1"})
        store(bob, f"ping {n}")
        assert finished(waiter, 15) and waiter.returncode == 2, n
    store(bob, "ping 5")
    waiter = hook(bob, "wake", {"session_id": "bob-1"})
    assert not finished(waiter, 3)  # the budget is spent: ping 5 waits for a human
    prompt = hook(bob, "working", {"session_id": "bob-1", "hook_event_name": "UserPromptSubmit", "cwd": str(ROOT)})
    assert finished(prompt, 15) and prompt.returncode == 0
    assert finished(waiter, 10) and waiter.returncode == 0  # the human is back: the idle waiter stops
    again = hook(bob, "wake", {"session_id": "bob-1"})
    assert finished(again, 15) and again.returncode == 2 and "ping 5" in again.stderr.read()
