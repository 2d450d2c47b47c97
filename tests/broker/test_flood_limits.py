"""Floods: a batch holds at most a share of one connection's sends, a message costs its sender one token per
recipient, and what one sender can leave waiting for one member is capped with a clear answer."""

from __future__ import annotations

import asyncio

import pytest

from broker.batcher import Batcher
from broker.models import Delivery, DeliveryState
from tests.support.sockets import db

pytestmark = pytest.mark.django_db(transaction=True)


def send_frame(target: str, text: str) -> dict:
    return {"type": "send", "id": text, "targetSpec": target, "nonce": "n", "ciphertext": text}


async def sent(peer, target: str, text: str) -> dict:
    await peer.send(send_frame(target, text))
    return await peer.expect(lambda f: f.get("type") == "ack" and f.get("id") == text)


async def test_a_batch_takes_a_fair_share_of_each_source_in_order():
    """Given 600 queued items of one source and then 1 of another, the first batch holds at most the share of the
    first and the other's item; nothing is reordered within a source."""
    batches: list[list[tuple[str, int]]] = []

    def flush(items):
        batches.append(list(items))

    async def done(items, result, error):
        return None

    batcher = Batcher(window=0.001, flush_fn=flush, done_fn=done, share=(lambda item: item[0], 250))
    for n in range(600):
        batcher.add(("flood", n))
    batcher.add(("victim", 0))
    await batcher.drain()
    assert ("victim", 0) in batches[0]
    assert sum(1 for source, _ in batches[0] if source == "flood") == 250
    flood = [n for batch in batches for source, n in batch if source == "flood"]
    assert flood == list(range(600))


async def test_a_broadcast_costs_one_token_per_recipient(make_member, connect, settings):
    settings.BROKER_SEND_RATE_BURST = 10
    settings.BROKER_SEND_RATE_PER_MIN = 1
    alice, *others = [await db(make_member)(f"m{n}") for n in range(6)]
    a = await connect(alice)
    for other in others:
        await connect(other)
    assert (await sent(a, "*", "b1"))["queued"] is True  # 5 recipients: 5 tokens
    assert (await sent(a, "*", "b2"))["queued"] is True  # 10 spent
    refused = await sent(a, others[0].pubkey, "dm")
    assert refused["queued"] is False and refused["error"].startswith("rate_limit")


async def test_direct_messages_past_the_recipient_cap_are_refused_clearly(make_member, connect, settings):
    settings.BROKER_MAX_QUEUED_PER_RECIPIENT = 3
    alice, bob, carol = [await db(make_member)(name) for name in ("alice", "bob", "carol")]
    a = await connect(alice)
    acks = [await sent(a, bob.pubkey, f"dm{n}") for n in range(5)]  # bob is offline
    assert [ack["queued"] for ack in acks] == [True, True, True, False, False]
    assert acks[3]["error"].startswith("recipient_queue_full: 3 of your messages already wait")
    assert (await sent(a, carol.pubkey, "other"))["queued"] is True  # another member's queue is its own
    b = await connect(bob)  # once bob reads them, alice may send again
    for ack in acks[:3]:
        await b.expect_push(ack["messageId"])
    await b.send({"type": "push_ack", "messageIds": [ack["messageId"] for ack in acks[:3]]})
    await b.disconnect()

    async def waiting() -> int:
        return await db(lambda: Delivery.objects.filter(recipient_member_id=bob.member.id, state=DeliveryState.PENDING).count())()

    for _ in range(100):
        if await waiting() == 0:
            break
        await asyncio.sleep(0.05)
    assert (await sent(a, bob.pubkey, "again"))["queued"] is True


async def test_a_broadcast_skips_members_whose_queue_is_full_and_says_so(make_member, connect, settings):
    settings.BROKER_MAX_QUEUED_PER_RECIPIENT = 2
    alice, *offline = [await db(make_member)(f"m{n}") for n in range(4)]
    a = await connect(alice)
    acks = [await sent(a, "*", f"all{n}") for n in range(3)]
    assert all(ack["queued"] for ack in acks)
    assert [ack.get("queueFull", 0) for ack in acks] == [0, 0, 3]
    for member in offline:
        rows = await db(lambda m=member: Delivery.objects.filter(recipient_member_id=m.member.id).count())()
        assert rows == 2


async def test_a_retry_in_the_same_batch_as_its_refused_send_is_refused_too(make_member, connect, settings):
    """Given bob's queue from alice full, when alice sends a message and at once its retry (same clientMessageId),
    then both are refused: the retry is not answered with the id of a message that was never stored."""
    settings.BROKER_MAX_QUEUED_PER_RECIPIENT = 1
    alice, bob = await db(make_member)("alice"), await db(make_member)("bob")
    a = await connect(alice)
    assert (await sent(a, bob.pubkey, "first"))["queued"] is True
    for send_id in ("try", "retry"):  # back to back: one batch
        await a.send({**send_frame(bob.pubkey, send_id), "clientMessageId": "same-message"})
    acks = [await a.expect(lambda f, i=i: f.get("type") == "ack" and f.get("id") == i) for i in ("try", "retry")]
    assert [(ack["queued"], ack["messageId"]) for ack in acks] == [(False, ""), (False, "")]
    assert all(ack["error"].startswith("recipient_queue_full") for ack in acks)
