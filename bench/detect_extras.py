"""Cost of statistical detection in one watch cycle, with and without the extra detectors.

    python bench/detect_extras.py [--series 1000] [--cycles 40] [--history 5760]

Calls ``detect_series`` (the watch's statistical step) on a real store in a temp folder, the
store opened anew each cycle as separate watch runs open it. The first cycle brings ``--history``
points per series (default a day at 15 s, so the seasonal rings are full, as in a watch that has
run for a day), every later cycle one new point per series, 15 s apart. The first 5 cycles are
not counted. Prints the median cycle time and the stored state's size per ``also`` setting;
asserts nothing about time.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from lazarus.config import Config
from lazarus.detect.cycle import detect_series
from lazarus.model import Sample
from lazarus.store import Store

SETTINGS = ([], ["change_point", "rate_of_change"], ["mad"], ["esd"])


def cycle_seconds(also: list[str], series: int, cycles: int, history: int) -> tuple[float, int]:
    """Median seconds of a cycle after the first 5, with ``also`` beside the ensemble, and the
    bytes of detector state in the store at the end."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "state.db"
        config = Config.model_validate(
            {
                "inventory": {"ssh": {"key": "k"}, "hosts": [{"name": "h", "address": "10.0.0.1"}]},
                "detectors": {"anomaly": [{"series": "*", "also": also}]},
                "state": {"path": str(path)},
            }
        )
        rng = np.random.default_rng(0)
        times = []
        for c in range(cycles):
            points = history if c == 0 else 1
            first = c + history - points
            samples = [
                Sample("latency", (("host", f"h{i}"),), float(v), 15.0 * (first + j))
                for i in range(series)
                for j, v in enumerate(100 + rng.normal(size=points))
            ]
            store = Store(path)
            try:
                started = time.perf_counter()
                detect_series(store, config, samples)
                times.append(time.perf_counter() - started)
            finally:
                store.close()
        store = Store(path)
        try:
            with store.transaction() as db:
                (size,) = db.execute("SELECT SUM(LENGTH(state)) FROM detector_cohorts").fetchone()
        finally:
            store.close()
    return statistics.median(times[5:]), int(size)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--series", type=int, default=1000)
    parser.add_argument("--cycles", type=int, default=40)
    parser.add_argument("--history", type=int, default=5760, help="points in the first cycle")
    args = parser.parse_args(argv)
    if args.cycles <= 5:
        parser.error("--cycles must be more than 5 (the first 5 are not counted)")
    for also in SETTINGS:
        seconds, size = cycle_seconds(also, args.series, args.cycles, max(args.history, 1))
        print(
            f"also {also or '[]'}: {seconds * 1000:.0f} ms a cycle over {args.series} series,"
            f" state {size / 1e6:.1f} MB"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
