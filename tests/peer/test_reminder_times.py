"""When a reminder is due, as `claudemesh remind` reads it: durations, the next HH:MM, ISO times."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from peer.reminders import WhenError, local_zone_name, looks_like_when, parse_when

NOW = datetime(2026, 12, 2, 15, 40, tzinfo=UTC)


@pytest.mark.parametrize(("text", "expected"), [
    ("90s", NOW + timedelta(seconds=90)), ("30m", NOW + timedelta(minutes=30)), ("in 2h", NOW + timedelta(hours=2)),
    ("1d", NOW + timedelta(days=1)), ("1.5h", NOW + timedelta(minutes=90)),
    ("16:00", NOW.replace(hour=16, minute=0)), ("09:30", (NOW + timedelta(days=1)).replace(hour=9, minute=30)),
    ("2026-12-24T09:00+01:00", datetime(2026, 12, 24, 8, 0, tzinfo=UTC)),
])
def test_when_texts(text, expected):
    assert parse_when(text, now=NOW) == expected


@pytest.mark.parametrize("text", ["soon", "25:00", "30 parsecs", ""])
def test_unreadable_times_are_refused(text):
    with pytest.raises(WhenError):
        parse_when(text, now=NOW)
    assert not looks_like_when(text)


def test_the_local_zone_is_a_real_zone(monkeypatch):
    monkeypatch.setenv("TZ", "Europe/Berlin")
    assert local_zone_name() == "Europe/Berlin"
    monkeypatch.setenv("TZ", "Not/AZone")
    assert local_zone_name() != "Not/AZone"
