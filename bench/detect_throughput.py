"""Detector throughput: the whole ensemble over 10,000 series x 1,440 points.

Prints, in one run: the batch time (every point of every series; wall and CPU, median of
``--repeat``), the incremental time (one new point per series, as a watch cycle), the peak
memory of the batch as a multiple of the input array (tracemalloc sees numpy's buffers), and
the same data through two references: a pandas rolling z-score (window 60) and a numpy floor
(one pass over the array), reported as ratios.

Run: ``env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python bench/detect_throughput.py``.
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from lazarus.detect.ensemble import Ensemble, EnsembleParams
from lazarus.detect.explain import Before


def synthetic(series: int, points: int, seed: int = 7) -> np.ndarray:
    """Daily-cycle gauges with noise, a few level shifts and ~0.1% gaps (5-minute samples)."""
    rng = np.random.default_rng(seed)
    t = np.arange(points)
    base = rng.uniform(10, 100, (series, 1))
    cycle = base * 0.2 * np.sin(2 * np.pi * t / 288 + rng.uniform(0, 6.3, (series, 1)))
    data = base + cycle + rng.normal(0, 1, (series, points)) * base * 0.02
    shifted = rng.random(series) < 0.05
    data[shifted, points // 2 :] += base[shifted] * 0.5
    data[rng.random((series, points)) < 0.001] = np.nan
    return data


def timed(fn, repeat: int) -> float:
    """Median wall seconds of ``repeat`` runs."""
    return timed_cpu(fn, repeat)[0]


def timed_cpu(fn, repeat: int) -> tuple[float, float]:
    """Median wall and CPU seconds of ``repeat`` runs (on a shared machine the CPU time of
    this process moves less with other jobs than the wall time does)."""
    wall, cpu = [], []
    for _ in range(repeat):
        started, started_cpu = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - started)
        cpu.append(time.process_time() - started_cpu)
    return statistics.median(wall), statistics.median(cpu)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--series", type=int, default=10_000)
    parser.add_argument("--points", type=int, default=1_440)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    data = synthetic(args.series, args.points)
    params = EnsembleParams(season=288)
    print(f"input {args.series} x {args.points} float64 = {data.nbytes / 2**20:.0f} MiB")

    batch, batch_cpu = timed_cpu(lambda: Ensemble(args.series, params).update(data), args.repeat)

    ensemble = Ensemble(args.series, params)
    ensemble.update(data)
    rng = np.random.default_rng(1)
    columns = [data[:, -1:] + rng.normal(0, 1, (args.series, 1)) for _ in range(20)]
    steps = iter(columns)
    incremental = timed(lambda: ensemble.update(next(steps)), len(columns))
    # The watch also keeps the state before each update, to explain what it labels.
    snapshot = timed(lambda: Before.of(ensemble), len(columns))

    tracemalloc.start()
    Ensemble(args.series, params).update(data)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()

    floor = timed(lambda: np.add.reduce(data, axis=1), args.repeat)
    pandas_z = timed(lambda: _pandas_rolling_z(data), args.repeat) if _has_pandas() else None

    print(f"ensemble batch        {batch:8.3f} s   (target <= 2 s; CPU {batch_cpu:.3f} s)")
    print(
        f"ensemble incremental  {incremental * 1e3:8.2f} ms  (target <= 50 ms, 1 point x "
        f"{args.series} series)"
    )
    print(f"explanation snapshot  {snapshot * 1e3:8.2f} ms  (explain.Before, per watch update)")
    print(f"peak memory (batch)   {peak / data.nbytes:8.2f} x input  (target <= 3x)")
    print(f"numpy floor           {floor:8.3f} s   ensemble / floor = {batch / floor:.0f}x")
    if pandas_z is not None:
        ratio = batch / pandas_z
        print(f"pandas rolling z      {pandas_z:8.3f} s   ensemble / pandas = {ratio:.2f}x")
    return 0


def _has_pandas() -> bool:
    """pandas is only the comparison, not a dependency of lazarus."""
    return importlib.util.find_spec("pandas") is not None


def _pandas_rolling_z(data: np.ndarray) -> np.ndarray:
    import pandas as pd

    frame = pd.DataFrame(data.T)
    rolling = frame.rolling(60, min_periods=2)
    return ((frame - rolling.mean()) / rolling.std()).to_numpy()


if __name__ == "__main__":
    sys.exit(main())
