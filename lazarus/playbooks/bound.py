"""The time bound of an automatic recover run: past it, the run stops at its next step, wait or
retry pause and escalates, saying where it was. The watch starts recoveries beside its loop;
without a bound one stuck playbook would hold a slot of that pool, and its incident, forever.

Cooperative on purpose: a step in flight is never torn down mid-command (every remote call has
its own timeout), so the run ends at most one step's timeout after the bound, through the same
path as any failed step (compensations, then ``escalated`` with the reason).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from lazarus.errors import LazarusError


class RunTimedOut(LazarusError):
    """The run outlived its bound."""


class RunBound:
    """``seconds`` from now (0: no bound). ``sleep`` and ``check`` raise RunTimedOut past it."""

    def __init__(self, seconds: float, clock: Callable[[], float] = time.monotonic):
        self.seconds, self.clock = seconds, clock
        self.ends = clock() + seconds if seconds > 0 else float("inf")

    def check(self, where: str) -> None:
        if self.clock() >= self.ends:
            raise RunTimedOut(f"the run outlived its bound of {self.seconds:g}s before {where}")

    def sleep(self, seconds: float) -> None:
        """A step's wait (or a retry's pause, or the wait for a fleet slot), cut at the bound."""
        time.sleep(max(0.0, min(seconds, self.ends - self.clock())))
        self.check("the end of a wait")
