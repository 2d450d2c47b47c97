"""apikey_* (owner/admin only), list_members and invite_create (docs/wire-extensions.md)."""

from __future__ import annotations

import pytest

from meshes.models import Role
from tests.support.sockets import db

pytestmark = pytest.mark.django_db(transaction=True)


async def test_api_keys_for_admins(make_member, connect):
    admin = await db(make_member)("admin", role=Role.ADMIN)
    a = await connect(admin)
    await a.send({"type": "apikey_create", "label": "ci", "capabilities": ["send", "read"], "_reqId": "c1"})
    created = await a.expect("apikey_created")
    assert created["_reqId"] == "c1" and created["secret"].startswith("cm_") and len(created["secret"]) == 46
    assert created["prefix"] == created["secret"][:11] and created["capabilities"] == ["send", "read"]
    assert created["topicScopes"] is None and created["createdAt"].endswith("Z")
    await a.send({"type": "apikey_list"})
    listed = await a.expect("apikey_list_response")
    assert "_reqId" not in listed
    [key] = listed["keys"]
    assert key["id"] == created["id"] and key["revokedAt"] is None and "secret" not in key
    await a.send({"type": "apikey_revoke", "id": created["id"][:8], "_reqId": "r"})
    revoked = await a.expect("apikey_revoke_response")
    assert revoked == {"type": "apikey_revoke_response", "status": "revoked", "id": created["id"], "_reqId": "r"}
    await a.send({"type": "apikey_revoke", "id": "zzzzzzzz"})
    assert (await a.expect("apikey_revoke_response"))["status"] == "not_found"
    await a.send({"type": "apikey_revoke", "_reqId": "x"})
    error = await a.expect("error")
    assert (error["code"], error["message"], error["_reqId"]) == ("invalid_args", "give the key's id or an id prefix", "x")
    await a.send({"type": "apikey_create", "label": "", "capabilities": [], "_reqId": "bad"})
    error = await a.expect("error")
    assert (error["code"], error["message"], error["_reqId"]) == (
        "invalid_args", "label must be 1–100 characters", "bad",
    )


async def test_api_keys_forbidden_for_members(make_member, connect):
    member = await db(make_member)("m")
    peer = await connect(member)
    for frame in (
        {"type": "apikey_create", "label": "x", "capabilities": ["send"], "_reqId": "1"},
        {"type": "apikey_list", "_reqId": "2"},
        {"type": "apikey_revoke", "id": "abcdefgh", "_reqId": "3"},
        {"type": "invite_create", "_reqId": "4"},
    ):
        await peer.send(frame)
        error = await peer.expect("error")
        assert error["code"] == "forbidden" and error["_reqId"] == frame["_reqId"]


async def test_list_members_includes_offline(make_member, connect):
    alice = await db(make_member)("alice", default_groups=[{"name": "eng"}])
    bob = await db(make_member)("bob", role=Role.ADMIN)
    a = await connect(alice)
    await a.send({"type": "list_members", "_reqId": "lm"})
    reply = await a.expect("members_list")
    assert reply["_reqId"] == "lm"
    by_key = {m["pubkey"]: m for m in reply["members"]}
    assert set(by_key) == {alice.pubkey, bob.pubkey}  # the dashboard-only owner has no key
    assert by_key[alice.pubkey] == {
        "memberId": alice.member.id, "pubkey": alice.pubkey, "displayName": "alice", "role": "member", "groups": [{"name": "eng"}],
        "online": True, "lastSeenAt": None,
    }
    assert by_key[bob.pubkey]["role"] == "admin"


async def test_invite_create_for_admins(make_member, connect):
    admin = await db(make_member)("admin", role=Role.ADMIN)
    a = await connect(admin)
    await a.send({"type": "invite_create", "role": "member", "maxUses": 3, "expiresInDays": 2, "_reqId": "i"})
    invite = await a.expect("invite_created")
    assert invite["_reqId"] == "i" and len(invite["code"]) == 8 and invite["token"]
    assert invite["url"].endswith(invite["token"]) and invite["shortUrl"].endswith(invite["code"])
    assert invite["expiresAt"].endswith("Z")
    await a.send({"type": "invite_create", "maxUses": 0, "_reqId": "bad"})
    assert (await a.expect("error"))["code"] == "invalid_args"


KEY = {"type": "apikey_create", "label": "ci", "capabilities": ["send"]}


@pytest.mark.parametrize(
    ("frame", "answer"),
    [
        ({**KEY, "capabilities": ["send", {}]}, "invalid_args"),  # unhashable: `in set` raised TypeError
        ({**KEY, "capabilities": [["send"]]}, "invalid_args"),
        ({**KEY, "label": "a\ud800"}, "invalid_args"),  # a lone surrogate fails the insert (no UTF-8 store takes it)
        ({**KEY, "topicScopes": ["ops\ud800"]}, "invalid_args"),  # Postgres jsonb refuses a lone \ud800 escape
        ({**KEY, "expiresAt": "9999-12-31T23:59:59-14:00"}, "invalid_args"),  # year 10000 in UTC: unreadable row
        ({**KEY, "expiresAt": "2999-01-01"}, "apikey_created"),  # no offset: UTC (compared with aware now: raised)
        ({**KEY, "expiresAt": "2999-01-01T10:00:00"}, "apikey_created"),
        ({"type": "invite_create", "maxUses": float("inf")}, "invalid_args"),  # int(inf): OverflowError
        ({"type": "invite_create", "maxUses": float("-inf")}, "invalid_args"),
        ({"type": "invite_create", "expiresInDays": float("inf")}, "invalid_args"),
    ],
    ids=["capability-object", "capability-list", "label-surrogate", "topic-scope-surrogate", "expiry-year-10000",
         "expiry-date-only", "expiry-no-offset", "max-uses-infinity", "max-uses-minus-infinity", "days-infinity"],
)
async def test_hostile_manager_request_is_answered_and_keys_still_list(make_member, connect, frame, answer):
    """Found by the hostile suite's admin fuzzer: given an admin, when apikey_create / invite_create carries one of
    these values, then it gets `invalid_args` (or is created) instead of an `internal` error, and the mesh's keys
    still list afterwards (a stored expiry past year 9999 in UTC made every later apikey_list fail)."""
    admin = await db(make_member)("admin", role=Role.ADMIN)
    a = await connect(admin)
    await a.send({**frame, "_reqId": "h"})
    reply = await a.expect(lambda f: f.get("_reqId") == "h")
    assert (reply.get("code") if reply["type"] == "error" else reply["type"]) == answer, reply
    await a.send({"type": "apikey_list", "_reqId": "l"})
    listed = await a.expect(lambda f: f.get("_reqId") == "l")
    assert listed["type"] == "apikey_list_response", listed
    assert len(listed["keys"]) == (answer == "apikey_created"), listed


async def test_invite_expiry_default_is_the_sites_setting(make_member, connect, settings):
    """Given INVITE_DEFAULT_DAYS, when an invite is created over the socket without expiresInDays, then it expires
    after that many days (the service's default, read at call time, not a literal in the broker)."""
    from datetime import UTC, datetime, timedelta

    settings.INVITE_DEFAULT_DAYS = 3
    admin = await db(make_member)("admin", role=Role.ADMIN)
    a = await connect(admin)
    await a.send({"type": "invite_create", "_reqId": "d"})
    invite = await a.expect("invite_created")
    expires = datetime.fromisoformat(invite["expiresAt"].replace("Z", "+00:00"))
    assert abs(expires - (datetime.now(UTC) + timedelta(days=3))) < timedelta(minutes=1)
