"""A worker's scheduler: fires due scheduled messages (broker/services/reminders.py) and pushes what it stored to
live sessions like any send. It sleeps until the next due time, at most BROKER_SCHEDULER_POLL_SECONDS (entries
made on other workers are seen within that), and a new entry on this worker wakes it at once. Idle, it costs one
indexed query per poll."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from channels.db import database_sync_to_async
from django.db import DatabaseError
from django.utils import timezone

from broker import conf
from broker.pipelines import SendPipeline
from broker.services.reminders import FIRE_BATCH, reminders_fire_due

logger = logging.getLogger(__name__)
BUSY_ELSEWHERE_SECONDS = 0.25


class Scheduler:
    def __init__(self, *, sends: SendPipeline) -> None:
        self.sends = sends
        self._wake = asyncio.Event()
        self.fired = 0  # firings this worker made (metrics, tests)

    def wake(self) -> None:
        self._wake.set()

    async def run(self) -> None:
        while True:
            try:
                delay = await self.tick()
            except DatabaseError as exc:  # the database is away: nothing is lost, the rows fire when it is back
                logger.warning("scheduled messages wait for the database: %s", (str(exc).splitlines() or [""])[0][:200])
                delay = conf.scheduler_poll_seconds()
            except Exception:
                logger.exception("firing scheduled messages failed; retrying")
                delay = conf.scheduler_poll_seconds()
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), delay)

    async def tick(self) -> float:
        """Fire what is due; the seconds until the next look."""
        started = time.monotonic()
        firing = await database_sync_to_async(reminders_fire_due)(worker_id=self.sends.fanout.worker_id,
                                                                  now=timezone.now())
        if firing.outcomes:
            await self.sends.push_claimed(firing.outcomes, [started] * len(firing.outcomes))
        self.fired += firing.fired
        poll = conf.scheduler_poll_seconds()
        if firing.fired >= FIRE_BATCH:
            return 0.0
        if firing.next_due is None:
            return poll
        wait = (firing.next_due - timezone.now()).total_seconds()
        if wait <= 0 and not firing.fired:
            return min(poll, BUSY_ELSEWHERE_SECONDS)  # due rows another worker is firing right now: not a spin
        return min(poll, max(0.0, wait))
