"""The two write pipelines of a worker. Sends: rate limit, one transaction per batch, then every sender's ack,
then the pushes of what the batch pre-claimed. Marks: what was written to ack-less sockets and what clients
acknowledged becomes delivered, a batch at a time, with the in-flight ledger kept in step."""

from __future__ import annotations

import logging
import time
from collections import defaultdict

from django.db import IntegrityError

from broker import conf, metrics, wire
from broker.batcher import Batcher
from broker.connection import Connection
from broker.dbthread import DbThread
from broker.fanout import Fanout
from broker.inflight import InflightLedger
from broker.layer import DeliverItem
from broker.ratelimit import SharedTokenBuckets, TokenBuckets, send_limit_text
from broker.registry import ConnectionRegistry
from broker.services.deliveries import DeliveredMark, deliveries_mark_delivered
from broker.services.routing import SendInput
from broker.services.sending import SendOutcome, messages_accept

logger = logging.getLogger(__name__)

QueuedSend = tuple[Connection, SendInput, str, float]  # (sender, checked send, its frame id, monotonic time)


class SendPipeline:
    def __init__(
        self,
        *,
        registry: ConnectionRegistry,
        fanout: Fanout,
        buckets: TokenBuckets,
        shared_buckets: SharedTokenBuckets | None,
        thread: DbThread | None,
    ) -> None:
        self.registry = registry
        self.fanout = fanout
        self.buckets = buckets
        self.shared_buckets = shared_buckets
        self.batcher: Batcher[QueuedSend] = Batcher(
            window=conf.batch_seconds(),
            flush_fn=self._flush,
            done_fn=self._done,
            thread=thread,
            prepare=self._rate_limit,
            pipeline=True,
            share=(lambda entry: id(entry[0]), conf.batch_share_per_connection()),
        )

    def refused_locally(self, member_id: str) -> str | None:
        """The per-process check, at the door (the refusal's text, or None). With shared buckets the whole
        batch is checked in one Redis call instead."""
        if self.shared_buckets is not None or self.buckets.take(member_id):
            return None
        return send_limit_text(*conf.send_rate())

    def submit(self, conn: Connection, item: SendInput, send_id: str) -> None:
        conn.send_taken()
        self.batcher.add((conn, item, send_id, time.monotonic()))

    async def _rate_limit(self, batch: list[QueuedSend]) -> list[QueuedSend]:
        if self.shared_buckets is None:
            return batch
        allowed = await self.shared_buckets.take_many([conn.member_id for conn, _, _, _ in batch])
        kept = []
        for entry, ok in zip(batch, allowed, strict=True):
            if ok:
                kept.append(entry)
                continue
            conn, _, send_id, _ = entry
            metrics.messages_rejected.labels("rate_limit").inc()
            conn.send_answered()
            await conn.send_frame(wire.send_ack(send_id, "", send_limit_text(*conf.send_rate())))
        return kept

    def _flush(self, batch: list[QueuedSend]) -> list[SendOutcome]:
        inputs = [item for _, item, _, _ in batch]
        try:
            return messages_accept(inputs=inputs, worker_id=self.fanout.worker_id)
        except IntegrityError:
            # The same clientMessageId committed on another worker meanwhile: the retry finds it and answers
            # with its messageId instead of failing the whole batch.
            return messages_accept(inputs=inputs, worker_id=self.fanout.worker_id)

    async def _done(self, batch: list[QueuedSend], outcomes: list[SendOutcome] | None, error) -> None:
        if error is not None:
            for conn, _, send_id, _ in batch:
                metrics.messages_rejected.labels("parse_or_handler").inc()
                conn.send_answered()
                await conn.send_frame(wire.send_ack(send_id, "", "internal error: message not stored, retry"))
            return
        await self._acknowledge(batch, outcomes)
        await self.push_claimed(outcomes, [started for _, _, _, started in batch])
        await self._charge_fanout(batch, outcomes)

    async def _charge_fanout(self, batch: list[QueuedSend], outcomes: list[SendOutcome]) -> None:
        """A message costs the sender one token per recipient: the first was taken at the door, the rest now."""
        extra: dict[str, float] = defaultdict(float)
        for (conn, _, _, _), outcome in zip(batch, outcomes, strict=True):
            if outcome.fanout > 1:
                extra[conn.member_id] += outcome.fanout - 1
        if not extra:
            return
        if self.shared_buckets is not None:
            await self.shared_buckets.charge_many(dict(extra))
        else:
            for member_id, amount in extra.items():
                self.buckets.charge(member_id, amount)

    async def _acknowledge(self, batch: list[QueuedSend], outcomes: list[SendOutcome]) -> None:
        """First: every sender hears its ack before any recipient gets the push (§3.8, §9 item 4)."""
        for (conn, _, send_id, _), outcome in zip(batch, outcomes, strict=True):
            conn.send_answered()
            if outcome.error is not None:
                metrics.messages_rejected.labels(outcome.reject_reason or "no_recipient").inc()
                await conn.send_frame(wire.send_ack(send_id, "", outcome.error))
            else:
                metrics.messages_in.inc()
                await conn.send_frame(wire.send_ack(send_id, outcome.message_id, reach=outcome.reach))

    async def push_claimed(self, outcomes: list[SendOutcome], started: list[float]) -> None:
        """Then: the pre-claimed rows, from memory: a local socket directly, another worker's in one message.
        `started` is when each send arrived (its latency is measured from there)."""
        elsewhere: dict[str, list[DeliverItem]] = defaultdict(list)
        here = self.fanout.worker_id
        for started_at, outcome in zip(started, outcomes, strict=True):
            if outcome.frame is None or not outcome.reach.claimed:
                continue
            text = wire.dumps(outcome.frame)
            message_id, priority = outcome.frame["messageId"], outcome.frame["priority"]
            for worker_id, presence_id in outcome.reach.claimed:
                if worker_id != here:
                    elsewhere[worker_id].append((presence_id, message_id, priority, text))
                    continue
                conn = self.registry.get(presence_id)
                if conn is not None:  # else: closed meanwhile; its row is released and re-sent
                    await conn.deliver_claimed([(message_id, priority, text)], started_at)
        for worker_id, items in elsewhere.items():
            await self.fanout.deliver_elsewhere(worker_id, items)


class MarkPipeline:
    def __init__(self, *, inflight: InflightLedger, thread: DbThread | None) -> None:
        self.inflight = inflight
        self.batcher: Batcher[DeliveredMark] = Batcher(
            window=conf.batch_seconds(), flush_fn=self._flush, done_fn=self._done, thread=thread
        )

    def written(self, conn: Connection, message_ids: tuple[str, ...]) -> None:
        """Pushes of claimed rows are on the socket: an ack-less socket's rows are delivered now; with
        deliveryAck the retransmit clock starts (it does not start at the claim)."""
        if conn.delivery_ack:
            self.inflight.wrote(conn.presence_id, message_ids)
            return
        self.batcher.add(_mark(conn, message_ids, by_claim=True))

    def acknowledged(self, conn: Connection, message_ids: list[str]) -> None:
        self.inflight.ack_queued(conn.presence_id, message_ids)  # no retransmit while it is on its way
        self.batcher.add(_mark(conn, tuple(message_ids), by_claim=False))

    def _flush(self, batch: list[DeliveredMark]) -> int:
        return deliveries_mark_delivered(marks=batch)

    async def _done(self, batch: list[DeliveredMark], result, error) -> None:
        for mark in batch:
            if not mark.by_claim:
                self.inflight.ack_flushed(mark.presence_id, mark.message_ids, stored=error is None)
        if error is not None:  # rows stay in flight; a reconnect re-sends them (at least once)
            logger.warning("could not mark %d delivery batches delivered", len(batch))


def _mark(conn: Connection, message_ids: tuple[str, ...], *, by_claim: bool) -> DeliveredMark:
    return DeliveredMark(
        presence_id=conn.presence_id,
        member_id=conn.member_id,
        keys=conn.keys,
        message_ids=message_ids,
        by_claim=by_claim,
    )
