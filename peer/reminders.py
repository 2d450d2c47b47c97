"""Reminders and scheduled messages from this peer (protocol.md §5.7, client.md `remind`): when a reminder is due
(`30m`, `2h`, `09:30`, an ISO time, or a cron in the spec's dialect with this machine's time zone), and the
schedule frames. The text is sealed to its target with the member key and, for this member's own listings, to
itself: the broker stores and fires it without reading it. Against a broker without sealed schedules (the
reference) the text goes as plaintext, as its own CLI sends it."""

from __future__ import annotations

import os
import re
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from protocol.encoding import epoch_ms
from protocol.envelope import WireEnvelope, open_direct, seal_direct

DURATION = re.compile(r"^(?:in\s+)?(\d+(?:\.\d+)?)\s*(s|sec|secs|seconds?|m|min|mins|minutes?|h|hrs?|hours?|d|days?)$",
                      re.IGNORECASE)
CLOCK = re.compile(r"^(?:at\s+)?([01]?\d|2[0-3]):([0-5]\d)$", re.IGNORECASE)
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


class WhenError(ValueError):
    pass


def local_zone_name() -> str:
    """This machine's IANA time zone (crons are evaluated in it): `TZ`, else /etc/localtime's target, else UTC."""
    candidates = [os.environ.get("TZ", "").lstrip(":")]
    try:
        target = os.path.realpath("/etc/localtime")
        if "zoneinfo/" in target:
            candidates.append(target.split("zoneinfo/", 1)[1])
    except OSError:
        pass
    try:
        candidates.append(Path("/etc/timezone").read_text().strip())
    except OSError:
        pass
    for name in candidates:
        if name:
            try:
                ZoneInfo(name)
                return name
            except (ZoneInfoNotFoundError, ValueError):
                continue
    return "UTC"


def parse_duration(text: str) -> timedelta | None:
    """`90s`, `30m`, `2h`, `1d`; None when `text` is not a duration."""
    duration = DURATION.fullmatch(text.strip())
    if duration is None:
        return None
    return timedelta(seconds=float(duration.group(1)) * _UNIT_SECONDS[duration.group(2)[0].lower()])


def parse_when(text: str, *, now: datetime | None = None) -> datetime:
    """`90s`, `30m`, `2h`, `1d` (from now), `HH:MM` (its next occurrence, local time) or an ISO date-time."""
    now = now or datetime.now().astimezone()
    value = text.strip()
    duration = parse_duration(value)
    if duration is not None:
        return now + duration
    clock = CLOCK.fullmatch(value)
    if clock:
        moment = now.replace(hour=int(clock.group(1)), minute=int(clock.group(2)), second=0, microsecond=0)
        return moment if moment > now else moment + timedelta(days=1)
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise WhenError(f"cannot read {text!r} as a time: use 30m, 2h, 1d, 09:30 or 2026-12-24T09:00") from None
    return moment if moment.tzinfo else moment.astimezone()


def looks_like_when(text: str) -> bool:
    try:
        parse_when(text)
        return True
    except WhenError:
        return False


class Reminders:
    """`seal_for(to, text)` is the client's: the target resolved and the text sealed to it with the member key,
    returning (targetSpec, envelope)."""

    def __init__(self, *, request: Callable[..., Awaitable[dict[str, Any]]],
                 seal_for: Callable[[str, str], Awaitable[tuple[str, WireEnvelope]]], member_pubkey: str,
                 member_secret: str, sealed: Callable[[], bool]):
        self._request = request
        self._seal_for = seal_for
        self.member_pubkey = member_pubkey
        self._member_secret = member_secret
        self._sealed = sealed

    async def schedule(self, text: str, *, at: datetime | None = None, cron: str | None = None, to: str | None = None,
                       zone: str | None = None) -> dict[str, Any]:
        """{scheduledId, deliverAt (ms), cron?, to}: to oneself (the member, so any of its sessions) by default."""
        if (at is None) == (cron is None):
            raise WhenError("a reminder needs either a time or a cron expression")
        frame: dict[str, Any] = {"type": "schedule", "subtype": "reminder",
                                 "deliverAt": 0 if cron else epoch_ms(at)}
        if cron:
            frame.update(cron=cron, recurring=True, timeZone=zone or local_zone_name())
        if self._sealed():
            spec, envelope = await self._seal_for(to or self.member_pubkey, text)
            note = seal_direct(text, recipient_pubkey=self.member_pubkey, sender_secret_hex=self._member_secret)
            frame.update(to=spec, nonce=envelope.nonce, ciphertext=envelope.ciphertext,
                         note={"nonce": note.nonce, "ciphertext": note.ciphertext})
        else:
            frame.update(to=to or self.member_pubkey, message=text)
        reply = await self._request(frame, "scheduled_ack", timeout=8.0)
        return {**{k: reply.get(k) for k in ("scheduledId", "deliverAt", "cron", "timeZone") if k in reply},
                "to": frame["to"], "encrypted": self._sealed()}

    async def list(self) -> list[dict[str, Any]]:
        reply = await self._request({"type": "list_scheduled"}, "scheduled_list")
        entries = []
        for raw in reply.get("messages") or []:
            if not isinstance(raw, dict):
                continue
            entry = {k: raw.get(k) for k in ("id", "to", "deliverAt", "createdAt", "cron", "firedCount", "timeZone")}
            entry["text"], entry["encrypted"] = raw.get("message"), bool(raw.get("encrypted"))
            note = raw.get("note")
            if entry["text"] is None and isinstance(note, dict):
                entry["text"] = self._open_note(note)
            entries.append(entry)
        return entries

    def _open_note(self, note: dict[str, Any]) -> str | None:
        """The text this member sealed to itself (None for a note it did not seal, or a broken one)."""
        envelope = WireEnvelope(nonce=str(note.get("nonce")), ciphertext=str(note.get("ciphertext")))
        return open_direct(envelope, sender_pubkey=self.member_pubkey, own_secrets=[self._member_secret])

    async def cancel(self, scheduled_id: str) -> dict[str, Any]:
        reply = await self._request({"type": "cancel_scheduled", "scheduledId": scheduled_id}, "cancel_scheduled_ack")
        return {"scheduledId": scheduled_id, "ok": bool(reply.get("ok"))}
