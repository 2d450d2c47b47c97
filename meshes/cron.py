"""Cron expressions in protocol.md §5.7's dialect, through croniter: five numeric fields, day-of-week 0–6
(0 = Sunday, 7 refused), day-of-month **and** day-of-week both matching, evaluated in a named time zone; the
next fire is the first whole minute strictly after a moment, at most 366 days ahead."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter
from croniter.croniter import CroniterError

MAX_CRON_CHARS = 120
SEARCH_DAYS = 366
_FIELD = re.compile(r"^[0-9*,/-]+$")


class CronError(ValueError):
    """The expression is not in the dialect, or never matches (the text is the spec's `invalid_cron` message)."""


class TimeZoneError(ValueError):
    pass


def time_zone(name: object) -> ZoneInfo:
    if not isinstance(name, str) or not name or len(name) > 64:
        raise TimeZoneError("timeZone must be an IANA time zone name such as Europe/Berlin")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise TimeZoneError(f"unknown time zone: {name}") from None


def check_cron(expression: object) -> str:
    """The expression, normalised to single spaces, or CronError naming it (the spec's `invalid_cron` text)."""
    if not isinstance(expression, str) or len(expression) > MAX_CRON_CHARS:
        raise CronError(f"Invalid cron expression: {str(expression)[:MAX_CRON_CHARS]}")
    fields = expression.split()
    invalid = CronError(f"Invalid cron expression: {expression}")
    if len(fields) != 5 or not all(_FIELD.fullmatch(field) for field in fields):
        raise invalid
    ranges = [part.split("/")[0] for part in fields[4].split(",")]  # what follows a `/` is a step, not a day
    if any(int(number) > 6 for part in ranges for number in re.findall(r"\d+", part)):
        raise invalid  # croniter takes 7 for Sunday; the dialect does not
    normalised = " ".join(fields)
    if not croniter.is_valid(normalised):
        raise invalid
    return normalised


def next_fire(expression: str, *, zone: ZoneInfo, after: datetime) -> datetime:
    """The first whole minute matching `expression` strictly after `after` (an aware datetime)."""
    start = after.astimezone(zone)
    try:
        found = croniter(expression, start, day_or=False, max_years_between_matches=1).get_next(datetime)
    except CroniterError:
        raise CronError(f"Invalid cron expression: {expression} (it never matches within {SEARCH_DAYS} days)") from None
    if found - start > timedelta(days=SEARCH_DAYS):
        raise CronError(f"Invalid cron expression: {expression} (it never matches within {SEARCH_DAYS} days)")
    return found
