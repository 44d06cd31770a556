"""A fire drill on the sandbox: inject a fault, run watch cycles, time detection and recovery.

The demo and bench/recovery_time.py both run drills; the numbers they print come from the
incident's own timestamps in the store, not from the drill's guesses.
"""

from __future__ import annotations

import threading
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


# Faults whose incidents are not all on the faulted host: a stopped database breaks its
# dependants on every host, so the drill follows every incident it opened.
FLEET_WIDE = frozenset({"db-stop"})


@dataclass(frozen=True)
class DrillResult:
    host: str
    mode: str
    fault_at: float
    incident: Incident | None  # the first the fault opened
    cycles: int
    incidents: tuple[Incident, ...] = ()  # every incident the drill followed

    @property
    def time_to_detect(self) -> float | None:
        return self.incident.detected_at - self.fault_at if self.incident else None

    @property
    def time_to_recover(self) -> float | None:
        """Fault -> the last of its incidents verified healthy; None unless all resolved."""
        followed = self.incidents or ((self.incident,) if self.incident else ())
        if not followed or any(i.state is not IncidentState.RESOLVED for i in followed):
            return None
        return max(i.verified_at or i.closed_at or 0.0 for i in followed) - self.fault_at


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
    detect_only: bool = False,
    symptom: str = "",
) -> DrillResult:
    """Run the watch loop and, once it runs warm, inject ``mode`` on ``host``; go on until the
    first incident on ``host`` (with ``symptom``, if given) ends (every incident it opened, for a
    fault in FLEET_WIDE), or opened (``detect_only``), or ``timeout`` after the fault.

    ``config_path`` defaults to the sandbox's own config; tests pass variants of it. The fault
    lands ``phase`` seconds after the loop's first cycle began: a real fault lands anywhere
    between two scheduled cycles of a loop that is already running, so a benchmark draws the
    phase at random within the interval (and never counts the loop's own start).
    """
    config_path = config_path or sandbox.config_path
    config = load(config_path)
    interval = config.watch.interval if interval is None else interval
    store = open_store(config)
    fault = _Fault(sandbox, host, mode)
    try:
        before = _newest_id(store)
        found: list[Incident] = []

        def ended(report: LoopReport) -> bool:
            if not fault.started:
                if report.cycles:  # warm: the fault lands ``phase`` after one of the next ticks
                    fault.inject_after((phase - (time.monotonic() - report.started)) % interval)
                return False
            if fault.at is None:
                return fault.failed()
            fleet = mode in FLEET_WIDE
            opened = [
                i
                for i in _incidents(store, None if fleet else host, after=before)
                if symptom in ("", i.symptom)
            ]
            found[:] = opened if fleet else opened[:1]
            done = bool(found) and (detect_only or all(i.state in _ENDED for i in found))
            return done or time.time() - fault.at >= timeout

        report = watch_until(str(config_path), interval=interval, until=ended)
        fault.failed()
        first = min(found, key=lambda i: i.detected_at, default=None)
        return DrillResult(host, mode, fault.at or 0.0, first, len(report.cycles), tuple(found))
    finally:
        store.close()


class _Fault:
    """The fault of a drill, injected on a timer beside the running loop."""

    def __init__(self, sandbox: Sandbox, host: str, mode: str):
        self.sandbox, self.host, self.mode = sandbox, host, mode
        self.at: float | None = None
        self.started = False
        self._error: BaseException | None = None
        self._timer: threading.Timer | None = None

    def inject_after(self, delay: float) -> None:
        self.started = True
        self._timer = threading.Timer(max(0.0, delay), self._inject)
        self._timer.start()

    def _inject(self) -> None:
        try:
            self.sandbox.fault(self.host, self.mode)
            self.at = time.time()
        except BaseException as exc:  # raised in the drill's thread by failed()
            self._error = exc

    def failed(self) -> bool:
        """False while the fault is on its way; raises what injecting it raised."""
        if self._error is not None:
            raise self._error
        return False


def _newest_id(store: Store) -> int:
    recent = store.recent(1)
    return recent[0].id if recent else 0


def _incidents(store: Store, host: str | None, *, after: int) -> list[Incident]:
    """Incidents opened after id ``after`` (on ``host``, unless None), oldest first."""
    return [i for i in reversed(store.recent(50)) if i.id > after and host in (None, i.host)]


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
