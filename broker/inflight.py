"""What this worker knows about its in-flight pushes, so the retransmit sweep re-sends only what may be lost.

The database's `claimed_at` is when the send batch committed; under a backlog the push is written later and
its `push_ack` can wait in the mark batcher for longer than the retransmit window. Re-sending those is a
duplicate at the client for nothing. So the worker remembers, per (presence, message):

- when it wrote the push to the socket (the retransmit clock starts there, not at the claim), and
- that a `push_ack` for it is queued or being flushed in the mark batcher.

A held row is only postponed (its `claimed_at` is bumped by the sweep), never dropped: if the mark fails or
the socket never acknowledges, the next sweep after the window re-sends it (at least once still holds).
Memory: one small entry per unacknowledged push; entries of closed sockets age out in `forget_stale`.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable


class InflightLedger:
    def __init__(self) -> None:
        self.written: dict[tuple[str, str], float] = {}  # (presence id, message id) → monotonic write time
        self.acking: Counter[tuple[str, str]] = Counter()  # push_acks queued or flushing in the mark batcher

    def wrote(self, presence_id: str, message_ids: Iterable[str]) -> None:
        now = time.monotonic()
        for message_id in message_ids:
            self.written[(presence_id, message_id)] = now

    def ack_queued(self, presence_id: str, message_ids: Iterable[str]) -> None:
        for message_id in message_ids:
            self.acking[(presence_id, message_id)] += 1

    def ack_flushed(self, presence_id: str, message_ids: Iterable[str], *, stored: bool) -> None:
        for message_id in message_ids:
            key = (presence_id, message_id)
            if key not in self.acking:
                continue
            left = self.acking[key] - 1
            if left > 0:
                self.acking[key] = left
            else:
                del self.acking[key]
            if stored:
                self.written.pop(key, None)

    def holds(self, presence_id: str, message_id: str, window: float) -> bool:
        """True when a re-send now would be a duplicate: the ack is on its way, or the push is recent.

        Called from the sweep's DB thread: single dict look-ups are atomic under the GIL.
        """
        key = (presence_id, message_id)
        if key in self.acking:
            return True
        written = self.written.get(key)
        return written is not None and time.monotonic() - written < window

    def forget_stale(self, older_than: float) -> None:
        """Drop write times of pushes never acknowledged (closed sockets, ack-less retransmits)."""
        cutoff = time.monotonic() - older_than
        for key in [key for key, at in self.written.items() if at < cutoff]:
            del self.written[key]
