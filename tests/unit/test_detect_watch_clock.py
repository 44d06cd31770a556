"""Clock offset the NTP way, and the clock_skew verdict it feeds."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Sequence

import pytest

from lazarus.config import Host
from lazarus.detect.skew import skew_anomalies
from lazarus.model import CommandResult, Sample
from lazarus.sources.clock import OFFSET, RTT, measure, parse_remote, reading, samples


class LocalExecutor:
    """The Executor protocol on this machine: the real ``date``, no SSH."""

    def __init__(self) -> None:
        self.calls = 0

    def run(
        self, host: Host, argv: Sequence[str], *, timeout: float | None = None
    ) -> CommandResult:
        self.calls += 1
        done = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout)
        return CommandResult(host.name, " ".join(argv), done.returncode, done.stdout, "", 0.0)

    def close(self) -> None:
        pass


HOST = Host(name="h1", address="127.0.0.1")


def test_ntp_arithmetic() -> None:
    # Sent at 100.0, back at 100.2; the host said 105.1: it runs 5 s ahead, +-0.1 s.
    r = reading(100.0, 105.1, 100.2)
    assert r.offset == pytest.approx(5.0)
    assert r.rtt == pytest.approx(0.2) and r.error == pytest.approx(0.1)
    assert reading(50.0, 49.0, 52.0).offset == pytest.approx(-2.0)


def test_parse_remote() -> None:
    assert parse_remote("1700000000.250000000\n") == pytest.approx(1700000000.25)
    assert parse_remote("1700000000.%N\n") == 1700000000.0  # a date without %N
    with pytest.raises(ValueError):
        parse_remote("date: invalid option")


def test_same_clock_measures_zero_within_the_round_trip() -> None:
    executor = LocalExecutor()
    found = measure(executor, HOST, tries=3)
    assert executor.calls == 3
    assert found.rtt > 0
    assert abs(found.offset) <= found.error + 1e-6


def test_a_clock_behind_shows_as_a_positive_offset() -> None:
    found = measure(LocalExecutor(), HOST, tries=2, clock=lambda: time.time() - 2.0)
    assert abs(found.offset - 2.0) <= found.error + 1e-6


def test_samples_name_the_host_and_skip_one_that_fails() -> None:
    class Broken(LocalExecutor):
        def run(self, host: Host, argv: Sequence[str], **kw: float | None) -> CommandResult:
            return CommandResult(host.name, "date", 0, "garbage", "", 0.0)

    got = samples(LocalExecutor(), [HOST])
    assert sorted(s.series for s in got) == [OFFSET, RTT]
    assert all(s.label("host") == "h1" for s in got)
    assert samples(Broken(), [HOST]) == []


def clock(host: str, offset: float, rtt: float) -> list[Sample]:
    labels = (("host", host),)
    return [Sample(OFFSET, labels, offset, 1.0), Sample(RTT, labels, rtt, 1.0)]


def test_skew_only_past_max_offset_beyond_the_measuring_error() -> None:
    found = skew_anomalies(
        [
            *clock("ok", 0.1, 0.01),
            *clock("ahead", 0.9, 0.01),
            *clock("behind", -2.0, 0.01),
            *clock("doubtful", 0.9, 1.0),  # 0.9 +- 0.5: may be only 0.4 off
            Sample(OFFSET, (("host", "no-rtt"),), 0.6, 1.0),
            Sample(OFFSET, (("host", "nan"),), float("nan"), 1.0),
        ],
        max_offset=0.5,
    )
    assert [(a.host, a.symptom, a.severity) for a in found] == [
        ("ahead", "clock_skew", "warning"),
        ("behind", "clock_skew", "warning"),
        ("no-rtt", "clock_skew", "warning"),
    ]
    assert "+0.900s" in found[0].summary
