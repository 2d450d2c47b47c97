"""Firing scheduled messages (protocol.md §5.7 with §10 item 7's fixes). Due rows are taken with `FOR UPDATE SKIP
LOCKED` (Postgres; SQLite has one writer), stored as messages through the normal send path and moved on in the
same transaction: each due time fires once whatever the number of workers, and a restart loses none.

A firing is a send from the scheduling member with `priority:"now"` and `subtype:"reminder"`, needing no live
scheduling connection: to oneself too; a reminder to an ended session goes to its member's live sessions, and
waits in the member's queue when none is live. A cron entry fires once for the due times missed while no worker
ran, then re-arms to its next time."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db import connection, transaction
from django.db.models import Min

from broker.services.routing import REMINDER, Sender, SendInput
from broker.services.sending import SendOutcome, messages_accept
from meshes.cron import CronError, TimeZoneError, next_fire, time_zone
from meshes.models import ScheduledMessage
from protocol.encoding import b64_encode
from protocol.vocabulary import Priority

FIRE_BATCH = 100


@dataclass(frozen=True)
class Firing:
    outcomes: list[SendOutcome]
    fired: int
    next_due: datetime | None  # the earliest entry still waiting (None: nothing scheduled)


def reminders_fire_due(*, worker_id: str, now: datetime) -> Firing:
    with transaction.atomic():
        due = ScheduledMessage.objects.filter(cancelled_at=None, finished_at=None, deliver_at__lte=now)
        due = due.select_related("member", "mesh").order_by("deliver_at")
        if connection.vendor == "postgresql":
            due = due.select_for_update(skip_locked=True, of=("self",))
        entries = list(due[:FIRE_BATCH])
        firing = [entry for entry in entries if _may_fire(entry, now)]
        inputs = [_send_input(entry) for entry in firing]
        outcomes = messages_accept(inputs=inputs, worker_id=worker_id) if inputs else []
        for entry, outcome in zip(firing, outcomes, strict=True):
            entry.fired_count += 1
            entry.last_fired_at = now
            entry.last_error = outcome.error
            _rearm(entry, now)
        for entry in entries:
            entry.save(update_fields=["deliver_at", "fired_count", "last_fired_at", "last_error", "finished_at",
                                      "cancelled_at"])
    upcoming = ScheduledMessage.objects.filter(cancelled_at=None, finished_at=None).aggregate(at=Min("deliver_at"))
    return Firing(outcomes, len(firing), upcoming["at"])


def _may_fire(entry: ScheduledMessage, now: datetime) -> bool:
    """A removed member's or an archived mesh's entries end here instead of firing."""
    if entry.member.revoked_at is not None or not entry.member.pubkey or entry.mesh.is_archived:
        entry.cancelled_at = now
        return False
    return True


def _send_input(entry: ScheduledMessage) -> SendInput:
    """A send from the scheduling member. Routing takes a reminder to an ended session to its member's sessions
    (or queue), as any direct message to an ended session."""
    member = entry.member
    if entry.encrypted:  # our clients seal with the member key: that is who the push says sent it
        session_pubkey, nonce, ciphertext = None, entry.nonce, entry.ciphertext
    else:  # §10 item 7: the reference's plaintext, as base64(UTF-8), from the scheduling session's key
        session_pubkey, nonce, ciphertext = entry.session_pubkey, "", b64_encode((entry.message or "").encode("utf-8"))
    sender = Sender(mesh_id=entry.mesh_id, member_id=member.id, member_pubkey=member.pubkey,
                    session_pubkey=session_pubkey, presence_id="")
    return SendInput(sender, entry.to, Priority.NOW.value, nonce, ciphertext,
                     client_message_id=f"sched.{entry.id}.{entry.fired_count + 1}", subtype=REMINDER)


def _rearm(entry: ScheduledMessage, now: datetime) -> None:
    if not entry.cron:
        entry.finished_at = now
        return
    try:
        entry.deliver_at = next_fire(entry.cron, zone=time_zone(entry.time_zone), after=now)
    except (CronError, TimeZoneError) as exc:
        entry.last_error, entry.finished_at = str(exc), now
