"""Topics on the wire (protocol.md §5.1 with the [PY] fixes of §10 items 1 and 11): the frames as the reference
CLI sends them get the replies §5.1 gives; topic sends reach every connected member live and land in a durable,
paginated history; unread counts follow `lastReadAt`."""

from __future__ import annotations

import pytest

from meshes.models import Topic, TopicMember, TopicMessage
from meshes.selectors import actor_for_member
from meshes.services.topics import topic_join
from tests.broker.test_messaging import sent
from tests.support.sockets import db

pytestmark = pytest.mark.django_db(transaction=True)


async def request(sock, frame: dict, reply_type: str) -> dict:
    await sock.send({**frame, "_reqId": f"r-{frame['type']}"})
    return await sock.expect(lambda f: f.get("_reqId") == f"r-{frame['type']}" and f["type"] in (reply_type, "error"))


async def test_every_member_is_in_general_and_a_new_topic_starts_with_its_creator_as_lead(make_member, connect):
    alice = await db(make_member)("alice")
    a = await connect(alice)
    listed = await request(a, {"type": "topic_list"}, "topic_list_response")
    assert [t["name"] for t in listed["topics"]] == ["general"]
    assert listed["topics"][0]["joined"] is True
    created = await request(a, {"type": "topic_create", "name": "Deploys", "description": "ship it"}, "topic_created")
    assert created["created"] is True and created["topic"]["name"] == "deploys"
    assert created["topic"]["visibility"] == "public" and len(created["topic"]["id"]) >= 20
    again = await request(a, {"type": "topic_create", "name": "deploys"}, "topic_created")
    assert again == {**created, "created": False}
    members = await request(a, {"type": "topic_members", "topic": "deploys"}, "topic_members_response")
    assert members["topic"] == "deploys"
    assert [(m["displayName"], m["role"], m["lastReadAt"]) for m in members["members"]] == [("alice", "lead", None)]
    listed = await request(a, {"type": "topic_list"}, "topic_list_response")
    entry = next(t for t in listed["topics"] if t["name"] == "deploys")
    assert entry["description"] == "ship it" and entry["memberCount"] == 1 and set(entry) >= {
        "id", "name", "description", "visibility", "memberCount", "createdAt"
    }


async def test_a_topic_send_reaches_every_connected_member_live_and_its_history(make_member, connect):
    alice, bob, carol, dave = [await db(make_member)(name) for name in ("alice", "bob", "carol", "dave")]
    a, b, c, d = [await connect(who) for who in (alice, bob, carol, dave)]
    topic = (await request(a, {"type": "topic_create", "name": "ops"}, "topic_created"))["topic"]
    for sock in (b, c):
        joined = await request(sock, {"type": "topic_join", "topic": "ops"}, "topic_joined")
        assert joined["topic"]["id"] == topic["id"] and joined["role"] == "member"
    a2 = await connect(alice)  # the sender's other session gets it too
    ack = await sent(a, f"#{topic['id']}", "cipher-1")
    assert ack["queued"] is True and ack["reach"]["live"] == 3
    for sock in (b, c, a2):
        push = await sock.expect_push(ack["messageId"])
        assert push["ciphertext"] == "cipher-1" and push["targetSpec"] == f"#{topic['id']}"
    await d.expect_nothing(lambda f: f.get("messageId") == ack["messageId"])  # not a member
    await a.expect_nothing(lambda f: f.get("messageId") == ack["messageId"])  # never the sending connection
    by_name = await sent(b, "#ops", "cipher-2")  # [PY] the broker resolves #name too
    assert by_name["queued"] is True
    history = await request(d, {"type": "topic_history", "topic": "ops"}, "topic_history_response")
    assert [m["ciphertext"] for m in history["messages"]] == ["cipher-2", "cipher-1"]  # newest first
    assert history["messages"][0]["senderPubkey"] == bob.pubkey and history["messages"][0]["senderMemberId"] == bob.member.id
    stored = await db(lambda: list(TopicMessage.objects.values_list("ciphertext", flat=True).order_by("seq")))()
    assert stored == ["cipher-1", "cipher-2"]


async def test_offline_members_are_not_queued_but_count_it_as_unread_until_they_mark_it_read(make_member, connect):
    alice, bob = await db(make_member)("alice"), await db(make_member)("bob")
    a = await connect(alice)
    ack = await sent(a, "#general", "while-bob-was-away")
    assert ack["reach"] == {"live": 0, "held": 0, "queued": 0}
    b = await connect(bob)
    await b.expect_nothing(lambda f: f.get("messageId") == ack["messageId"])
    general = lambda listed: next(t for t in listed["topics"] if t["name"] == "general")  # noqa: E731
    assert general(await request(b, {"type": "topic_list"}, "topic_list_response"))["unread"] == 1
    assert general(await request(a, {"type": "topic_list"}, "topic_list_response"))["unread"] == 0  # own message
    marked = await request(b, {"type": "topic_mark_read", "topic": "general"}, "topic_marked_read")
    assert marked["topic"]["name"] == "general"
    assert general(await request(b, {"type": "topic_list"}, "topic_list_response"))["unread"] == 0
    members = await request(b, {"type": "topic_members", "topic": "general"}, "topic_members_response")
    assert next(m for m in members["members"] if m["displayName"] == "bob")["lastReadAt"] is not None


async def test_history_pages_back_with_before_id_and_clamps_the_limit(make_member, connect):
    alice = await db(make_member)("alice")
    a = await connect(alice)
    ids = [(await sent(a, "#general", f"m{n}"))["messageId"] for n in range(7)]
    page = await request(a, {"type": "topic_history", "topic": "general", "limit": 3}, "topic_history_response")
    assert [m["id"] for m in page["messages"]] == ids[6:3:-1]
    older = await request(
        a, {"type": "topic_history", "topic": "general", "limit": 3, "beforeId": ids[4]}, "topic_history_response"
    )
    assert [m["id"] for m in older["messages"]] == ids[3:0:-1]
    clamped = await request(a, {"type": "topic_history", "topic": "general", "limit": 0}, "topic_history_response")
    assert len(clamped["messages"]) == 1


async def test_unknown_topics_and_strangers_get_clear_errors_with_the_req_id(make_member, connect):
    alice, bob = await db(make_member)("alice"), await db(make_member)("bob")
    a, b = await connect(alice), await connect(bob)
    for frame_type in ("topic_join", "topic_leave", "topic_members", "topic_history", "topic_mark_read"):
        error = await request(a, {"type": frame_type, "topic": "nope"}, "nothing")
        assert error["type"] == "error" and error["code"] == "topic_not_found"
        assert error["message"] == 'topic "nope" not found' and error["_reqId"] == f"r-{frame_type}"
    refused = await sent(a, "#nope", "x")
    assert refused["queued"] is False and refused["error"] == 'topic "nope" not found'
    await request(a, {"type": "topic_create", "name": "secret", "visibility": "private"}, "topic_created")
    denied = await request(b, {"type": "topic_join", "topic": "secret"}, "topic_joined")
    assert denied["code"] == "forbidden"
    hidden = await request(b, {"type": "topic_history", "topic": "secret"}, "topic_history_response")
    assert hidden["code"] == "forbidden"
    listed = await request(b, {"type": "topic_list"}, "topic_list_response")
    assert "secret" not in [t["name"] for t in listed["topics"]]
    not_member = await sent(b, "#secret", "x")
    assert not_member["queued"] is False and "join it first" in not_member["error"]
    bad = await request(a, {"type": "topic_create", "name": "-bad name"}, "topic_created")
    assert bad["code"] == "invalid_args"


async def test_a_lead_adds_someone_to_a_private_topic_and_leaving_stops_the_pushes(make_member, connect):
    alice, bob = await db(make_member)("alice"), await db(make_member)("bob")
    a, b = await connect(alice), await connect(bob)
    topic = (await request(a, {"type": "topic_create", "name": "core", "visibility": "private"}, "topic_created"))["topic"]
    added = await request(a, {"type": "topic_join", "topic": "core", "memberId": bob.member.id}, "topic_joined")
    assert added["memberId"] == bob.member.id
    first = await sent(a, "#core", "one")
    await b.expect_push(first["messageId"])
    left = await request(b, {"type": "topic_leave", "topic": topic["id"]}, "topic_left")
    assert left["left"] is True
    second = await sent(a, "#core", "two")
    await b.expect_nothing(lambda f: f.get("messageId") == second["messageId"])


async def test_reference_clients_frames_without_req_id_are_answered_as_the_spec_says(make_member, connect):
    """The reference CLI's frames (client.md §1.5): create/list/members/history answer; join/leave/read send no
    error when they succeed (our additive confirmations are extra frames it ignores)."""
    alice = await db(make_member)("alice")
    a = await connect(alice)
    await a.send({"type": "topic_create", "name": "ref", "_reqId": "c1"})
    created = await a.expect("topic_created")
    assert set(created) == {"type", "topic", "created", "_reqId"} and set(created["topic"]) == {"id", "name", "visibility"}
    await a.send({"type": "topic_join", "topic": created["topic"]["id"], "role": "observer", "_reqId": "j1"})
    joined = await a.expect("topic_joined")
    assert joined["role"] == "lead"  # an existing membership keeps its role
    await a.send({"type": "topic_history", "topic": "ref", "_reqId": "h1"})
    history = await a.expect("topic_history_response")
    assert history["topic"] == "ref" and history["messages"] == []
    for message in history["messages"]:
        assert set(message) >= {"id", "senderPubkey", "nonce", "ciphertext", "createdAt"}


async def test_a_new_member_joins_general_and_a_replaced_identity_keeps_its_topics(mesh, make_member):
    from meshes.services.topics import topic_subscriptions_carry

    def run():
        old, new = make_member("old"), make_member("new")
        topic = Topic.objects.create(mesh=mesh, name="kept")
        topic_join(actor=actor_for_member(member_id=old.member.id), topic_ref="kept")
        topic_subscriptions_carry(from_member=old.member, to_member=new.member)
        return set(TopicMember.objects.filter(member=new.member).values_list("topic__name", flat=True)), topic

    names, _ = await db(run)()
    assert names == {"general", "kept"}


async def test_malformed_topic_fields_get_invalid_args_not_an_internal_error(make_member, connect):
    alice = await db(make_member)("alice")
    a = await connect(alice)
    for frame in (
        {"type": "topic_join", "topic": "general", "memberId": {"x": 1}},
        {"type": "topic_leave", "topic": "general", "memberId": ["a"]},
        {"type": "topic_create", "name": "ok", "description": "bad \udc00 text"},
        {"type": "topic_create", "name": "ok", "visibility": "secret"},
        {"type": "topic_join", "topic": "general", "role": "boss"},
    ):
        error = await request(a, frame, "nothing")
        assert error["type"] == "error" and error["code"] == "invalid_args", (frame, error)
    for ref in ("a\u0000b", "lone \ud800"):  # no topic has such a name: not found, never a database error
        for kind in ("topic_join", "topic_members", "topic_history", "topic_mark_read"):
            error = await request(a, {"type": kind, "topic": ref}, "nothing")
            assert error["code"] == "topic_not_found", (kind, error)
    history = await request(a, {"type": "topic_history", "topic": "general", "limit": "lots", "beforeId": 7},
                            "topic_history_response")
    assert history["type"] == "topic_history_response"
