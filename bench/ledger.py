"""Correlates sends, acks and pushes into delivery figures.

A push names its message only by the `messageId` the broker put in the sender's `ack`. The ack normally
reaches the sender first (protocol.md §3.8), but the recipient can be another process, or simply read its
socket first, so pushes with a not-yet-known id are buffered (`orphans`) and matched when the ack comes.
Whatever is still unmatched at the end is a stray push (e.g. left over from an earlier run).
"""

from __future__ import annotations

from collections import Counter


def error_reason(text: str) -> str:
    """A short bucket name for an ack error: the text before ':' ('rate_limit', 'payload too large', ...)."""
    head = text.split(":", 1)[0].strip()
    return (head or text)[:48]


class Ledger:
    def __init__(self, planned_sends: int = 0) -> None:
        self.planned_sends = planned_sends
        self.send_time: dict[str, float] = {}
        self.acked = 0
        self.accepted = 0
        self.delivered = 0
        self.duplicates = 0
        self.errors: Counter[str] = Counter()
        self.ack_latency: list[float] = []
        self.push_latency: list[float] = []
        self.send_lag: list[float] = []
        self.duplicate_gap: list[float] = []  # first push -> repeated push: tells a retransmit timer from a race
        self.first_send: float | None = None
        self.last_push: float | None = None
        self._sent_at_by_message: dict[str, float] = {}
        self._pushed_at: dict[str, float] = {}
        self._orphans: dict[str, list[float]] = {}

    # --- events (same signatures as the child-process sink in bench.worker) ------------------------------
    def on_send(self, client_id: str, at: float, lag: float | None = None) -> None:
        self.send_time[client_id] = at
        if self.first_send is None or at < self.first_send:
            self.first_send = at
        if lag is not None:
            self.send_lag.append(lag)

    def on_ack(self, client_id: str, at: float, message_id: str, error: str | None) -> None:
        sent_at = self.send_time.get(client_id)
        if sent_at is None:  # an ack for something this run did not send
            self.errors["ack_for_unknown_send"] += 1
            return
        self.acked += 1
        if error is not None or not message_id:
            self.errors[error_reason(error or "no messageId")] += 1
            return
        self.accepted += 1
        self.ack_latency.append(at - sent_at)
        self._sent_at_by_message[message_id] = sent_at
        for pushed_at in self._orphans.pop(message_id, ()):
            self._deliver(message_id, pushed_at)

    def on_push(self, message_id: str, at: float) -> None:
        if message_id in self._sent_at_by_message:
            self._deliver(message_id, at)
        else:
            self._orphans.setdefault(message_id, []).append(at)

    def on_error(self, reason: str, count: int = 1) -> None:
        self.errors[reason] += count

    def _deliver(self, message_id: str, at: float) -> None:
        first = self._pushed_at.get(message_id)
        if first is not None:
            self.duplicates += 1
            self.duplicate_gap.append(at - first)
            return
        self._pushed_at[message_id] = at
        self.delivered += 1
        self.push_latency.append(at - self._sent_at_by_message[message_id])
        if self.last_push is None or at > self.last_push:
            self.last_push = at

    # --- derived ------------------------------------------------------------------------------------------
    @property
    def sent(self) -> int:
        return len(self.send_time)

    @property
    def stray_pushes(self) -> int:
        return sum(len(times) for times in self._orphans.values())

    def complete(self) -> bool:
        """Everything planned was sent and acked, and every accepted message was pushed."""
        return self.sent >= self.planned_sends and self.acked >= self.sent and self.delivered >= self.accepted
