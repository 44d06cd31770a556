"""Backtest from the Prefect UI: what the detectors would have said on the last hours of
Prometheus history, as a table artifact (`lazarus backtest` prints the same from a shell)."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from prefect import flow, get_run_logger
from prefect.artifacts import create_table_artifact

from lazarus.detect.replay import history, replay
from tasks.runtime import load


@flow(name="backtest", log_prints=True)
def backtest(
    config_path: str = "lazarus.yaml", hours: float = 24.0, step_seconds: float = 0.0
) -> int:
    """Replay ``hours`` of history at ``step_seconds`` (0: the watch interval); returns how
    many anomalies would have opened incidents."""
    config = load(config_path)
    end = time.time()
    step = step_seconds or config.watch.interval
    anomalies = replay(config, history(config, end - hours * 3600, end, step))
    get_run_logger().info("%d anomalies would have fired in %g h", len(anomalies), hours)
    create_table_artifact(
        key="backtest",
        table=[
            {
                "at": datetime.fromtimestamp(a.at, UTC).isoformat(timespec="seconds"),
                "fingerprint": a.fingerprint,
                "summary": a.summary,
            }
            for a in anomalies
        ]
        or [{"at": "", "fingerprint": "nothing would have fired", "summary": ""}],
        description=f"what the detectors would have said over the last {hours:g} h",
    )
    return len(anomalies)
