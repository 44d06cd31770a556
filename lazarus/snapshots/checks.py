"""Judging a database check's answer against its bounds, apart from any driver.

A check's query returns one number or boolean. A value outside its bounds is damage
(``db_corrupt``); a query that errors, times out or returns nothing usable is a *failed check*:
reported with its error, never taken for damage, since a slow or broken check says nothing
about the data.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from lazarus.config import DbCheck, parse_drop


@dataclass(frozen=True)
class CheckResult:
    """What one run of one check found."""

    database: str
    check: str
    value: float | None = None
    error: str = ""  # the query failed: not damage
    broken: str = ""  # the bound the value broke: damage

    @property
    def ok(self) -> bool:
        return not self.error and not self.broken

    def summary(self) -> str:
        if self.error:
            return f"{self.database}: check {self.check!r} failed: {self.error}"
        if self.broken:
            return f"{self.database}: check {self.check!r} = {self.value:g}: {self.broken}"
        return f"{self.database}: check {self.check!r} = {self.value:g}: ok"


def as_number(answer: object) -> float:
    """The single value a check returned, as a number; ValueError says why it is not one."""
    if isinstance(answer, bool):
        return float(answer)
    if isinstance(answer, int | float | Decimal):
        return float(answer)
    if answer is None:
        raise ValueError("returned NULL or no row")
    raise ValueError(f"returned {type(answer).__name__} {str(answer)[:40]!r}, not a number")


def judge(
    database: str, check: DbCheck, answer: object, previous: float | None = None
) -> CheckResult:
    """The verdict on ``answer`` (the query's first column, or an Exception it raised)."""
    if isinstance(answer, BaseException):
        return CheckResult(database, check.name, error=str(answer) or type(answer).__name__)
    try:
        value = as_number(answer)
    except ValueError as exc:
        return CheckResult(database, check.name, error=str(exc))
    return CheckResult(database, check.name, value, broken=broken_bound(check, value, previous))


def broken_bound(check: DbCheck, value: float, previous: float | None) -> str:
    """Which bound ``value`` breaks ('' when none); ``previous`` is the last run's value."""
    if check.equals is not None and value != float(check.equals):
        return f"expected {float(check.equals):g}"
    if check.min is not None and value < check.min:
        return f"below the minimum {check.min:g}"
    if check.max is not None and value > check.max:
        return f"above the maximum {check.max:g}"
    if check.max_drop is not None and previous is not None:
        amount, percent = parse_drop(check.max_drop)
        limit = abs(previous) * amount / 100 if percent else amount
        if previous - value > limit:
            return f"fell from {previous:g}, more than max_drop {check.max_drop}"
    return ""
