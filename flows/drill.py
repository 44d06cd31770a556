"""A fire drill on the sandbox: inject a fault, run watch cycles, time detection and recovery.

The demo and bench/recovery_time.py both run drills; the numbers they print come from the
incident's own timestamps in the store, not from the drill's guesses.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from prefect import flow
from prefect.artifacts import create_table_artifact

from flows.loop import LoopReport, watch_until
from lazarus.model import Incident, IncidentState
from lazarus.sandbox import Sandbox
from lazarus.store import Store
from tasks.runtime import load, open_store

_ENDED = (IncidentState.RESOLVED, IncidentState.ESCALATED)


@dataclass(frozen=True)
class DrillResult:
    host: str
    mode: str
    fault_at: float
    incident: Incident | None
    cycles: int

    @property
    def time_to_detect(self) -> float | None:
        return self.incident.detected_at - self.fault_at if self.incident else None

    @property
    def time_to_recover(self) -> float | None:
        """Fault -> verified healthy; None when the drill did not end resolved."""
        if self.incident is None or self.incident.state is not IncidentState.RESOLVED:
            return None
        return (self.incident.verified_at or self.incident.closed_at or 0.0) - self.fault_at


def warm_up(config_path: Path, cycles: int = 2) -> None:
    """Healthy cycles first (1 s apart): Prefect starts, and the detectors see the fleet well."""
    watch_until(str(config_path), interval=1.0, until=lambda r: len(r.cycles) >= cycles)


def drill(
    sandbox: Sandbox,
    host: str,
    mode: str = "kill",
    *,
    config_path: Path | None = None,
    interval: float | None = None,
    timeout: float = 120.0,
    phase: float = 0.0,
) -> DrillResult:
    """Inject ``mode`` on ``host`` and run the watch loop until its incident ends or time is up.

    ``config_path`` defaults to the sandbox's own config; tests pass variants of it. ``phase``
    is how long after the fault the first cycle starts: a real fault lands anywhere between two
    scheduled cycles, so a benchmark draws it at random within the interval.
    """
    config_path = config_path or sandbox.config_path
    config = load(config_path)
    interval = config.watch.interval if interval is None else interval
    store = open_store(config)
    try:
        before = _newest_id(store)
        sandbox.fault(host, mode)
        fault_at = time.time()
        time.sleep(phase)
        incident: Incident | None = None

        def ended(_: LoopReport) -> bool:
            nonlocal incident
            incident = _incident_on(store, host, after=before)
            done = incident is not None and incident.state in _ENDED
            return done or time.time() - fault_at >= timeout

        report = watch_until(str(config_path), interval=interval, until=ended)
        return DrillResult(host, mode, fault_at, incident, len(report.cycles))
    finally:
        store.close()


def _newest_id(store: Store) -> int:
    recent = store.recent(1)
    return recent[0].id if recent else 0


def _incident_on(store: Store, host: str, *, after: int) -> Incident | None:
    return next((i for i in reversed(store.recent(20)) if i.id > after and i.host == host), None)


@flow(name="drill", log_prints=True)
def fire_drill(sandbox_dir: str, host: str, fault: str = "kill") -> dict[str, float | str | None]:
    """A fire drill from the Prefect UI on a running sandbox (`lazarus sandbox up --dir DIR`):
    inject ``fault`` on ``host``, run watch cycles until its incident ends, report the times.

    Only the sandbox takes faults: a drill never touches the real fleet.
    """
    result = drill(Sandbox.load(Path(sandbox_dir)), host, fault)
    report = {
        "host": host,
        "fault": fault,
        "state": result.incident.state.value if result.incident else "no incident",
        "time_to_detect": result.time_to_detect,
        "time_to_recover": result.time_to_recover,
    }
    create_table_artifact(key="drill", table=[report], description="fire drill on the sandbox")
    return report
