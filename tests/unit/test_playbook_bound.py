"""The bound of an automatic recover run: it stops at the next step or wait, never mid-step."""

from __future__ import annotations

import pytest

from lazarus.playbooks.bound import RunBound, RunTimedOut


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_run_within_its_bound_goes_on_and_past_it_stops_at_the_next_step() -> None:
    clock = Clock()
    bound = RunBound(20.0, clock=clock)
    bound.check("steps/restart")
    clock.now = 120.0
    with pytest.raises(RunTimedOut, match="outlived its bound of 20s before verify/cleared"):
        bound.check("verify/cleared")


def test_a_wait_is_cut_at_the_bound_and_then_stops_the_run() -> None:
    bound = RunBound(0.05)
    with pytest.raises(RunTimedOut, match="before the end of a wait"):
        bound.sleep(600.0)  # a 10-minute wait step ends at the bound, not after it
    RunBound(0.0).sleep(0.0)  # 0: no bound
    RunBound(0.0).check("steps/x")
