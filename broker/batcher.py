"""Per-worker batchers: many sends (or delivery marks) → one transaction on one thread hop.

The batch window is a few milliseconds; under load a batch simply grows. Callers never block the event loop.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar

from channels.db import database_sync_to_async

from broker.dbthread import DbThread

logger = logging.getLogger(__name__)
T = TypeVar("T")

MAX_BATCH = 1000


class Batcher(Generic[T]):
    """Collects items; `flush_fn(items)` runs in the DB thread; `done_fn(items, result, error)` on the loop."""

    def __init__(
        self,
        *,
        window: float,
        flush_fn: Callable[[list[T]], Any],
        done_fn: Callable[[list[T], Any, BaseException | None], Awaitable[None]],
        thread: DbThread | None = None,
        prepare: Callable[[list[T]], Awaitable[list[T]]] | None = None,
        pipeline: bool = False,
        share: tuple[Callable[[T], Any], int] | None = None,
    ):
        self.window = window
        # Pipelined: batch k's completion (writing acks and pushes, on the loop) overlaps batch k+1's flush
        # (in the DB thread) instead of the two taking turns. Completions still run one at a time, in order.
        self._pipeline = pipeline
        self._completing: asyncio.Task | None = None
        self._prepare = prepare  # on the loop, before the flush: may answer and drop items
        # With its own thread (and DB connection) the batcher's sends, delivery marks and drains do not queue
        # behind each other on Django's single shared thread (SQLite keeps them there: one writer).
        self._flush_fn = (
            database_sync_to_async(flush_fn) if thread is None else lambda items: thread.run(flush_fn, items)
        )
        self._done_fn = done_fn
        # (key, most items per key in one batch): one source cannot fill a batch; its other items, still in
        # their order, wait for the next one.
        self._share = share
        self._items: list[T] = []
        self._added: list[float] = []  # monotonic add time per queued item (backlog age)
        self._task: asyncio.Task | None = None
        # Items ever added / items whose batch has completed: lets `settle` wait for a point in time.
        self._enqueued = 0
        self._settled = 0
        self._progress = asyncio.Event()

    def add(self, item: T) -> None:
        self._items.append(item)
        self._added.append(time.monotonic())
        self._enqueued += 1
        if self._task is None or self._task.done():
            self._task = asyncio.ensure_future(self._run())

    async def _run(self) -> None:
        while self._items:
            if self.window:
                await asyncio.sleep(self.window)
            batch = self._take_batch()
            taken = len(batch)
            if self._prepare is not None:
                try:
                    batch = await self._prepare(batch)
                except Exception:
                    logger.exception("batch preparation failed; flushing the batch unchanged")
                if not batch:
                    self._mark_settled(taken)
                    continue
            result, error = None, None
            try:
                result = await self._flush_fn(batch)
            except Exception as exc:  # the batch failed as a whole: every caller hears about it
                logger.exception("batch flush failed (%d items)", len(batch))
                error = exc
            if not self._pipeline:
                await self._complete(batch, result, error, taken)
                continue
            if self._completing is not None:  # at most one completion behind: bounded memory, kept order
                await asyncio.wait({self._completing})
            self._completing = asyncio.ensure_future(self._complete(batch, result, error, taken))

    def _take_batch(self) -> list[T]:
        if self._share is None or len(self._items) <= self._share[1]:
            batch, self._items = self._items[:MAX_BATCH], self._items[MAX_BATCH:]
            self._added = self._added[MAX_BATCH:]
            return batch
        key_of, limit = self._share
        taken: dict[Any, int] = {}
        batch, kept, kept_added = [], [], []
        index = 0
        for index, (item, added) in enumerate(zip(self._items, self._added, strict=True)):  # noqa: B007
            if len(batch) >= MAX_BATCH:
                break
            key = key_of(item)
            if taken.get(key, 0) < limit:
                taken[key] = taken.get(key, 0) + 1
                batch.append(item)
            else:
                kept.append(item)
                kept_added.append(added)
        else:
            index = len(self._items)
        self._items = kept + self._items[index:]
        self._added = kept_added + self._added[index:]
        return batch

    async def _complete(self, batch: list[T], result: Any, error: BaseException | None, taken: int) -> None:
        try:
            await self._done_fn(batch, result, error)
        except Exception:
            logger.exception("batch completion failed")
        finally:
            self._mark_settled(taken)

    def _mark_settled(self, count: int) -> None:
        self._settled += count
        self._progress.set()
        self._progress = asyncio.Event()

    def _idle(self) -> bool:
        return (self._task is None or self._task.done()) and (self._completing is None or self._completing.done())

    async def settle(self) -> None:
        """Wait until every item added before this call has completed. Unlike `drain`, items added later
        do not hold the caller up, so a closing socket is not kept waiting by other sockets' traffic."""
        target = self._enqueued
        while self._settled < target and not self._idle():
            await self._progress.wait()

    def backlog_seconds(self) -> float:
        """How long the oldest queued item has waited (0 when nothing waits): a measure of this worker's lag."""
        return time.monotonic() - self._added[0] if self._added else 0.0

    async def drain(self) -> None:
        """Wait until everything added so far has been flushed (the task loops until the list is empty)."""
        while (self._task is not None and not self._task.done()) or (
            self._completing is not None and not self._completing.done()
        ):
            await asyncio.wait({t for t in (self._task, self._completing) if t is not None and not t.done()})
