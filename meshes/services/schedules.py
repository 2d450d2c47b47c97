"""Writes to a mesh's scheduled messages (protocol.md §5.7 with §10 item 7's fixes): schedule and cancel. Our
clients schedule an envelope sealed to the target (and a note sealed to themselves, for their listings); the
reference's plaintext `message` is accepted and kept as sent. Firing is the broker's (broker/scheduler.py)."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from meshes.actors import Actor
from meshes.cron import CronError, TimeZoneError, check_cron, next_fire, time_zone
from meshes.errors import ServiceError
from meshes.models import Member, ScheduledMessage
from meshes.selectors_coordination import schedules_owned
from meshes.selectors_topics import require_topic, require_topic_reader
from meshes.services.checks import check_int, require_live_mesh, require_member
from meshes.text import storable
from protocol.encoding import HEX64, from_epoch_ms
from protocol.envelope import WireEnvelope
from protocol.vocabulary import PushSubtype

MAX_ACTIVE_PER_MEMBER = 200
MAX_AHEAD_DAYS = 3660
MAX_TEXT_CHARS = 16_000
SCHEDULE_ID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")  # a UUID, as §1.6 makes them


def _clean_to(actor: Actor, to: Any) -> str:
    """A targetSpec the scheduler can deliver to: a member or session key of this mesh, `*`, `@group`, `#topic`
    (a topic by name is kept by its id). A display name is refused here instead of failing at fire time."""
    if not isinstance(to, str) or not storable(to) or not to.strip():
        raise ServiceError("invalid_args", "to must be a pubkey, @group, * or #topic")
    to = to.strip()
    if to in ("*", "@all") or (to.startswith("@") and 1 < len(to) <= 101):
        return to
    if to.startswith("#"):
        topic = require_topic(mesh_id=actor.mesh.id, topic_ref=to[1:])
        require_topic_reader(actor=actor, topic=topic)
        return f"#{topic.id}"
    if HEX64.fullmatch(to):
        return to.lower()
    raise ServiceError("invalid_args", f"to must be a pubkey, @group, * or #topic, not {to[:40]!r}")


def _first_fire(*, deliver_at: Any, cron: Any, zone_name: Any, now: datetime) -> tuple[datetime, str | None, str]:
    zone_name = zone_name or settings.TIME_ZONE
    try:
        zone = time_zone(zone_name)
        if cron not in (None, ""):
            expression = check_cron(cron)
            return next_fire(expression, zone=zone, after=now), expression, zone_name
    except TimeZoneError as exc:
        raise ServiceError("invalid_args", str(exc)) from None
    except CronError as exc:
        raise ServiceError("invalid_cron", str(exc)) from None
    millis = check_int(deliver_at, field="deliverAt", low=0, high=2**53)
    moment = from_epoch_ms(millis)
    if moment > now + timedelta(days=MAX_AHEAD_DAYS):
        raise ServiceError("invalid_args", f"deliverAt must be within {MAX_AHEAD_DAYS} days")
    return max(moment, now), None, zone_name  # a time already past fires at once


def _clean_payload(message: Any, envelope: WireEnvelope | None) -> tuple[str | None, str, str]:
    if envelope is not None:
        limit = getattr(settings, "BROKER_MAX_MESSAGE_BYTES", 65536)
        if not (storable(envelope.nonce) and storable(envelope.ciphertext)) or not envelope.ciphertext:
            raise ServiceError("invalid_args", "nonce and ciphertext must be non-empty text")
        if len(envelope.nonce) + len(envelope.ciphertext) > limit:
            raise ServiceError("invalid_args", f"the scheduled message is larger than {limit} bytes")
        return None, envelope.nonce, envelope.ciphertext
    if not isinstance(message, str) or not storable(message) or not 1 <= len(message) <= MAX_TEXT_CHARS:
        raise ServiceError("invalid_args", f"message must be 1–{MAX_TEXT_CHARS} characters of text")
    return message, "", ""


@transaction.atomic
def schedule_create(
    *,
    actor: Actor,
    session_pubkey: str | None,
    to: Any,
    message: Any = None,
    envelope: WireEnvelope | None = None,
    note: Any = None,
    deliver_at: Any = None,
    cron: Any = None,
    zone_name: Any = None,
    subtype: Any = None,
) -> ScheduledMessage:
    member = require_member(actor)
    require_live_mesh(actor.mesh)
    now = timezone.now()
    target = _clean_to(actor, to)
    first, expression, zone_name = _first_fire(deliver_at=deliver_at, cron=cron, zone_name=zone_name, now=now)
    text, nonce, ciphertext = _clean_payload(message, envelope)
    if subtype not in (None, "", PushSubtype.REMINDER):
        raise ServiceError("invalid_args", "subtype must be reminder")
    if note is not None and (not isinstance(note, dict) or not all(
        isinstance(note.get(k), str) and storable(note[k]) and len(note[k]) <= MAX_TEXT_CHARS * 2
        for k in ("nonce", "ciphertext")
    )):
        raise ServiceError("invalid_args", "note must be {nonce, ciphertext} sealed to yourself")
    active = ScheduledMessage.objects.filter(mesh=actor.mesh, member=member, cancelled_at=None, finished_at=None)
    if active.count() >= MAX_ACTIVE_PER_MEMBER:
        raise ServiceError("limit", f"you have {MAX_ACTIVE_PER_MEMBER} scheduled messages: cancel some first")
    return ScheduledMessage.objects.create(
        mesh=actor.mesh, member=member, session_pubkey=session_pubkey, to=target, message=text, nonce=nonce,
        ciphertext=ciphertext, note=note, subtype=subtype or None, cron=expression, time_zone=zone_name,
        deliver_at=first, created_at=now,
    )


@transaction.atomic
def schedule_cancel(*, actor: Actor, scheduled_id: Any, session_pubkey: str | None = None) -> bool:
    """True when an active entry of this member (or, for a manager, of anyone in the mesh) was cancelled."""
    member: Member = require_member(actor)
    if not isinstance(scheduled_id, str) or not SCHEDULE_ID.fullmatch(scheduled_id):
        return False
    mine = ScheduledMessage.objects.filter(id=scheduled_id, mesh=actor.mesh, cancelled_at=None, finished_at=None)
    if not member.is_manager:
        mine = mine.filter(schedules_owned(actor=actor, session_pubkey=session_pubkey))
    return bool(mine.update(cancelled_at=timezone.now()))
