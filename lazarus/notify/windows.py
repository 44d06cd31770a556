"""Recurring maintenance windows: a cron schedule (UTC) says when one opens, a duration how long.

``0 2 * * sun`` with ``2h`` mutes what the window matches every Sunday 02:00-04:00 UTC. The
five cron fields (minute hour day-of-month month day-of-week) take ``*``, numbers, ranges,
lists, ``*/step`` and day or month names, as in crontab(5); when both day fields are
restricted a day matching either counts, as in cron.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache

from lazarus.errors import ConfigError

_MONTHS = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
_DAYS = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"]
_NAMES = {4: {m: i for i, m in enumerate(_MONTHS, 1)}, 5: {d: i for i, d in enumerate(_DAYS)}}
_RANGES = ((0, 59), (0, 23), (1, 31), (1, 12), (0, 7))
MAX_WINDOW_S = 7 * 86400.0


@dataclass(frozen=True)
class Cron:
    """The sets of minutes, hours, days, months and weekdays (0 = Sunday) a schedule fires on."""

    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]
    any_day: bool
    any_weekday: bool

    def fires(self, at: datetime) -> bool:
        """Whether the schedule fires at the minute ``at`` (UTC)."""
        if at.minute not in self.minutes or at.hour not in self.hours:
            return False
        return at.month in self.months and self._day(at)

    def _day(self, at: datetime) -> bool:
        day, weekday = at.day in self.days, (at.isoweekday() % 7) in self.weekdays
        if self.any_day or self.any_weekday:
            return day and weekday
        return day or weekday


@lru_cache(maxsize=256)
def parse_cron(text: str) -> Cron:
    """Five cron fields -> Cron; ConfigError names the field that is wrong."""
    fields = text.split()
    if len(fields) != 5:
        raise ConfigError(
            f"schedule {text!r} needs 5 cron fields (minute hour day month weekday), "
            f"e.g. '0 2 * * sun'"
        )
    sets = [_field(text, i, f) for i, f in enumerate(fields, 1)]
    weekdays = frozenset(d % 7 for d in sets[4])
    return Cron(*sets[:4], weekdays, fields[2] == "*", fields[4] == "*")


def _field(text: str, position: int, field: str) -> frozenset[int]:
    low, high = _RANGES[position - 1]
    values: set[int] = set()
    for part in field.lower().split(","):
        span, _, step_text = part.partition("/")
        try:
            step = int(step_text) if step_text else 1
            if span == "*":
                first, last = low, high
            else:
                start, _, end = span.partition("-")
                first = _number(start, position)
                last = _number(end, position) if end else (high if step_text else first)
        except ValueError:
            raise ConfigError(
                f"schedule {text!r}: cannot read field {position} {field!r}"
            ) from None
        if step < 1 or not low <= first <= last <= high:
            raise ConfigError(
                f"schedule {text!r}: field {position} {field!r} must lie in {low}-{high}"
            )
        values.update(range(first, last + 1, step))
    return frozenset(values)


def _number(word: str, position: int) -> int:
    named = _NAMES.get(position, {}).get(word[:3])
    return named if named is not None else int(word)


def window_open(schedule: str, duration: float, now: float) -> float | None:
    """When the current occurrence of the window opened, or None when it is closed at ``now``.

    Walks back minute by minute over at most ``duration`` (capped at 7 days): bounded, and
    cached per minute, so muting a storm of alerts costs one walk per window and minute.
    """
    duration = min(duration, MAX_WINDOW_S)
    start = _latest_fire(schedule, int(duration // 60) + 1, math.floor(now / 60) * 60)
    return start if start is not None and now - start < duration else None


@lru_cache(maxsize=1024)
def _latest_fire(schedule: str, minutes: int, minute: float) -> float | None:
    """The newest minute at or before ``minute`` (within ``minutes``) the schedule fires on."""
    cron = parse_cron(schedule)
    at = datetime.fromtimestamp(minute, UTC)
    for back in range(minutes + 1):
        candidate = at - timedelta(minutes=back)
        if cron.fires(candidate):
            return candidate.timestamp()
    return None
