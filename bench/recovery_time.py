"""Time-to-detect and time-to-recover on the sandbox: N kill -> heal drills.

    python bench/recovery_time.py --drills 10 --interval 5

Each drill kills the web service on one host (round robin) at a random point between two watch
cycles, runs cycles on the given interval until the incident ends, and reads the times from
the incident's own timestamps.
Needs root (the sandbox). Prints median and p95 of both, and how many drills ended resolved.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
from pathlib import Path

from flows.cli import prefect_environment


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--drills", type=int, default=10)
    parser.add_argument("--interval", type=float, default=5.0, help="watch interval, seconds")
    parser.add_argument("--hosts", type=int, default=3)
    parser.add_argument("--seed", type=int, default=1, help="for the fault's phase in the cycle")
    parser.add_argument("--dir", type=Path, default=Path(".lazarus/bench-recovery"))
    args = parser.parse_args()

    prefect_environment()
    from flows.drill import drill, warm_up
    from lazarus.sandbox import Sandbox

    sandbox = Sandbox.up(args.dir.resolve(), name="bench", hosts=args.hosts, subnet=215)
    try:
        warm_up(sandbox.config_path)
        results = []
        rng = random.Random(args.seed)
        for i in range(args.drills):
            host = sandbox.hosts[i % len(sandbox.hosts)].name
            phase = rng.uniform(0, args.interval)
            result = drill(sandbox, host, "kill", interval=args.interval, phase=phase)
            results.append(result)
            _close_breaker(sandbox, host)
            print(
                f"drill {i + 1}/{args.drills} {host}: "
                f"detect {result.time_to_detect or float('nan'):.1f}s "
                f"recover {result.time_to_recover or float('nan'):.1f}s "
                f"({result.incident.state if result.incident else 'no incident'})",
                flush=True,
            )
    finally:
        sandbox.down()
    detect = [r.time_to_detect for r in results if r.time_to_detect is not None]
    recover = [r.time_to_recover for r in results if r.time_to_recover is not None]
    print(f"\nwatch interval {args.interval:g}s, {len(recover)}/{len(results)} drills resolved")
    for name, values in (("time-to-detect", detect), ("time-to-recover", recover)):
        if values:
            print(
                f"{name:16} median {statistics.median(values):5.1f}s  "
                f"p95 {percentile(values, 0.95):5.1f}s  max {max(values):5.1f}s"
            )
    return 0 if len(recover) == len(results) else 1


def _close_breaker(sandbox, host: str) -> None:
    """Each drill is a new fault, not flapping: close the breaker (3 runs an hour) as people do."""
    from lazarus.playbooks import Guards
    from tasks.runtime import load, open_store

    store = open_store(load(sandbox.config_path))
    try:
        Guards(store).reset_breaker(f"web@{host}", "service-down")
    finally:
        store.close()


if __name__ == "__main__":
    sys.exit(main())
