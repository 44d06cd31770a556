"""The watch loop's own dead-man: a store that cannot be written pages at once, other failures
after watch.dead_after in a row, and never more than once per repeat_interval."""

from __future__ import annotations

import itertools
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from lazarus.config import Config
from lazarus.notify import deadman
from lazarus.notify.deadman import Watchdog
from lazarus.notify.deliver import Delivery


def _config(tmp_path: Path, repeat: str = "1h") -> Config:
    return Config.model_validate(
        {
            "inventory": {"ssh": {"key": "k"}, "hosts": []},
            "notify": {
                "receivers": [
                    {"name": "chat", "urls": ["json://127.0.0.1:9/hook"]},
                    {"name": "mail", "urls": ["mailto://127.0.0.1:9?to=o@x.test"]},
                ],
                "route": {"receiver": "chat", "repeat_interval": repeat},
                "fallback": "mail",
            },
            "watch": {"interval": "1s", "dead_after": 3},
            "base_dir": str(tmp_path),
        }
    )


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str, str]]:
    """What the dead-man sent: (receiver, title, body); chat refuses, mail takes it."""
    got: list[tuple[str, str, str]] = []

    def deliver(name: str, urls: Any, title: str, body: str, **_: Any) -> Delivery:
        got.append((name, title, body))
        return Delivery(name, name == "mail", (), "" if name == "mail" else "refused")

    monkeypatch.setattr(deadman, "deliver", deliver)
    return got


def test_a_store_that_cannot_be_written_pages_at_once_then_once_per_repeat_interval(
    tmp_path: Path, sent: list[tuple[str, str, str]]
) -> None:
    now = [0.0]
    dog = Watchdog(clock=lambda: now[0])
    config = _config(tmp_path)
    full = sqlite3.OperationalError("database or disk is full")
    outcomes = dog.failed(config, full, probe=lambda: ["web@web-3: refused"])
    assert [(o.receiver, o.ok) for o in outcomes] == [("chat", False), ("mail", True)]
    assert "web@web-3: refused" in sent[-1][2]
    assert "cannot write its state" in sent[-1][1] and "disk is full" in sent[-1][1]
    for _ in range(50):  # a failing cycle every second for a while: no more pages
        now[0] += 1
        assert dog.failed(config, full) == []
    dog.completed()  # a cycle that works does not re-arm it: a flapping disk is one page
    now[0] = 3601.0
    assert len(dog.failed(config, full)) == 2


def test_other_failures_page_after_dead_after_in_a_row(
    tmp_path: Path, sent: list[tuple[str, str, str]]
) -> None:
    dog, config = Watchdog(clock=lambda: 0.0), _config(tmp_path)
    boom = RuntimeError("bug in a stage")
    assert dog.failed(config, boom) == [] and dog.failed(config, boom) == []
    dog.completed()  # the streak is broken
    assert dog.failed(config, boom) == [] and dog.failed(config, boom) == []
    assert dog.failed(config, boom)
    assert "fails every cycle" in sent[-1][1]


def _completion_gaps(interval: float, poll: float, run: float, until: float = 600.0) -> list[float]:
    """A deployment's healthy watch runs: one due every ``interval``, started at the worker's
    next poll, each taking ``run`` seconds (process start, config load, cycle); a due run that
    finds one still going is cancelled (one watch at a time). The gaps between completions."""
    done, busy_until, t = [], 0.0, 0.0
    while t < until:
        start = -(-t // poll) * poll  # the next poll at or after it came due
        if start >= busy_until:
            busy_until = start + run
            done.append(busy_until)
        t += interval
    return [b - a for a, b in itertools.pairwise(done)]


@pytest.mark.parametrize("interval", [1.0, 2.0, 5.0, 15.0, 60.0])
@pytest.mark.parametrize("run", [4.0, 8.0, 14.0])
def test_the_deployed_dead_mans_window_outlasts_every_healthy_gap(
    interval: float, run: float
) -> None:
    """The automation paged every 20 s at a 2 s interval while the watch was fine: a run that
    starts in 4-8 s, behind a 10 s worker poll, leaves gaps longer than 3 intervals."""
    from lazarus.config import Watch

    watch = Watch(interval=interval, dead_after=3)
    gaps = _completion_gaps(interval, poll=10.0, run=run)
    assert max(gaps) < deadman.deployed_silence(watch)
    if interval <= 2:  # the bare dead_after * interval is what paged falsely
        assert max(gaps) > watch.dead_after * watch.interval
    longer = Watch(interval=interval, dead_after=6)  # more cycles missed before it pages
    assert deadman.deployed_silence(longer) - deadman.deployed_silence(watch) == 3 * interval
    quick = Watch(interval=interval, dead_after=3, startup="5s")  # a worker polling every 1 s
    assert deadman.deployed_silence(quick) == 3 * interval + 5
