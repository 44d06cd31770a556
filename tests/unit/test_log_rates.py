"""Error-template rates through the detection ensemble: steady errors stay quiet, a quiet
template that starts erroring hard opens one log_error_spike, state survives a restart."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from lazarus.detect.cycle import known_series
from lazarus.logcollect import FileLines, LogBatch, error_spikes, feed
from lazarus.logmine import LogSignals, state
from lazarus.model import Anomaly
from lazarus.store import Store
from tests.unit.test_logcollect_collect import config

T0 = 1_700_000_040.0  # a bucket boundary
BUCKET = 60.0
CYCLES_PER_BUCKET = 3  # a 20 s watch
FORMAT = "<Level> <Content>"


def lines(bucket: int, rng: np.random.Generator, quiet: int, steady: bool) -> list[str]:
    """One bucket of a web service's log: requests, a steady timeout error, a quiet one."""
    out = [
        f"INFO GET /api/orders/{rng.integers(1, 9999)} 200 in {rng.integers(1, 90)} ms"
        for _ in range(rng.poisson(30))
    ]
    if steady:
        out += [
            f"ERROR payment gateway timeout after {rng.integers(2000, 5000)} ms "
            f"for order {rng.integers(1, 9999)}"
            for _ in range(rng.poisson(12))  # often past min_count: its history holds it
        ]
    out += [f"ERROR db connection refused by 10.0.0.{rng.integers(2, 9)}:5432"] * quiet
    rng.shuffle(out)
    return out


def run(
    tmp_path: Path,
    buckets: int,
    quiet: Callable[[int], int],
    *,
    restart: bool = False,
    steady_until: int = 10**9,
) -> list[tuple[int, Anomaly]]:
    """Watch cycles over ``buckets`` minutes on web-1 (web-2 logs requests only); with
    ``restart``: the cycles of every 7th minute end as a process does (signals saved to their
    file, store closed) and the next starts as a new one does (both read back)."""
    rng = np.random.default_rng(7)
    cfg = config(tmp_path, [], hosts=("web-1", "web-2"))
    path = tmp_path / "logsignals.json"
    signals, store = LogSignals(), Store(tmp_path / "lazarus.db")
    found: list[tuple[int, Anomaly]] = []
    try:
        for bucket in range(buckets):
            web1 = lines(bucket, rng, quiet(bucket), bucket < steady_until)
            web2 = lines(bucket, rng, 0, False)
            for cycle in range(CYCLES_PER_BUCKET):
                at = T0 + bucket * BUCKET + cycle * BUCKET / CYCLES_PER_BUCKET
                part = slice(cycle * len(web1) // 3, (cycle + 1) * len(web1) // 3)
                batch = LogBatch(
                    at,
                    [
                        FileLines("web-1", "web", "/log", FORMAT, web1[part]),
                        FileLines("web-2", "web", "/log", FORMAT, web2 if cycle == 0 else []),
                    ],
                )
                feed(signals, batch)
                found += [(bucket, a) for a in error_spikes(signals, batch, store, cfg)]
                if restart and bucket % 7 == 0:  # the next cycle is a new process
                    state.save(signals, path)
                    signals = state.load(LogSignals, path)
                    store.close()
                    store = Store(tmp_path / "lazarus.db")
        series = known_series(store)
    finally:
        store.close()
    assert any(r.series == "log_error_rate" for r in series.values())  # the detectors saw them
    return found


def now_and_then(bucket: int) -> int:
    """A template that errs once every 40 minutes."""
    return 1 if bucket % 40 == 5 else 0


def test_steady_errors_and_a_drop_in_errors_do_not_fire(tmp_path: Path) -> None:
    assert run(tmp_path, 330, now_and_then, steady_until=300) == []


def spiking(bucket: int) -> int:
    return 45 if 280 <= bucket < 284 else now_and_then(bucket)


def test_a_quiet_template_that_errs_hard_opens_one_spike(tmp_path: Path) -> None:
    found = run(tmp_path, 300, spiking)
    assert len(found) == 1
    bucket, anomaly = found[0]
    assert bucket == 281  # scored once its bucket (280) is complete
    assert (anomaly.host, anomaly.service, anomaly.symptom) == ("web-1", "web", "log_error_spike")
    assert anomaly.at == T0 + 280 * BUCKET
    assert "connection refused" in anomaly.summary and "45/min" in anomaly.summary
    assert float(anomaly.labels["baseline_per_min"]) < 0.1
    assert anomaly.labels["series"].startswith('log_error_rate{host="web-1"')


def test_state_restored_across_restarts_gives_the_same_result(tmp_path: Path) -> None:
    kept = run(tmp_path / "kept", 300, spiking)
    restarted = run(tmp_path / "restarted", 300, spiking, restart=True)
    assert [(b, a.summary, a.at) for b, a in restarted] == [(b, a.summary, a.at) for b, a in kept]
    assert len(restarted) == 1


def test_spike_bounds_from_config_hold_back_small_spikes(tmp_path: Path) -> None:
    def small(bucket: int) -> int:
        return 8 if 280 <= bucket < 284 else now_and_then(bucket)

    assert run(tmp_path, 300, small) == []  # 8 lines a minute: below min_count (10)
