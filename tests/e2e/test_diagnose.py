"""Diagnosis on real parts: two services on sandbox hosts, ``api`` (web-1) depends on
``orders-db`` (web-3). orders-db's process is killed first, then api's; real watch cycles open
both incidents, and diagnosing api's names orders-db as the probable cause."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.e2e.conftest import variant

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("prefect_harness")]

NAME = "diagnose-cascade"
MAX_CYCLES = 8


@dataclass(frozen=True)
class Cascade:
    config_path: Path
    orders: Any  # Incident
    api: Any  # Incident


def _cycle_until(config_path: Path, found: Callable[[], Any]) -> Any:
    from flows.watch import watch

    for _ in range(MAX_CYCLES):
        watch(str(config_path))
        incident = found()
        if incident is not None:
            return incident
        time.sleep(0.5)
    raise AssertionError(f"no incident after {MAX_CYCLES} watch cycles")


def _two_services(sandbox: Any) -> dict[str, Any]:
    """orders-db = the web service on web-3 only; api = the one on web-1, needing orders-db."""
    data = yaml.safe_load(sandbox.config_path.read_text())["inventory"]
    hosts = [{**h, "labels": {**h["labels"], "name": h["name"]}} for h in data["hosts"]]
    # the sandbox's own database and web's need of it stay out: here orders-db is a web service
    web = {k: v for k, v in data["services"][0].items() if k != "depends_on"}
    services = [
        {**web, "name": "orders-db", "hosts": {"name": "web-3"}},
        {**web, "name": "api", "hosts": {"name": "web-1"}, "depends_on": ["orders-db"]},
    ]
    return {
        "state.path": f"state/{NAME}.db",
        "inventory.hosts": hosts,
        "inventory.services": services,
        "inventory.databases": [],
        "recovery": {"enabled": False},
    }


@pytest.fixture(scope="module")
def cascade(sandbox: Any) -> Iterator[Cascade]:
    from lazarus.store import Store

    for host in sandbox.hosts:  # whatever an earlier test left behind
        sandbox.fault(host.name, "heal")
        sandbox.fault(host.name, "clear")
    for suffix in ("", "-wal", "-shm"):  # a rerun starts with no incident history
        (sandbox.root / "state" / f"{NAME}.db{suffix}").unlink(missing_ok=True)
    config_path = variant(sandbox, NAME, _two_services(sandbox))
    store = Store(sandbox.root / "state" / f"{NAME}.db")

    def on(service: str) -> Any:
        return next((i for i in store.active() if i.service == service), None)

    try:
        _cycle_until(config_path, lambda: True)  # one healthy cycle: Prefect is warm
        assert store.active() == []
        sandbox.fault("web-3", "kill")
        orders = _cycle_until(config_path, lambda: on("orders-db"))
        sandbox.fault("web-1", "kill")
        api = _cycle_until(config_path, lambda: on("api"))
        yield Cascade(config_path, orders, api)
    finally:
        store.close()
        for host in ("web-1", "web-3"):
            sandbox.fault(host, "clear")


def _diagnose(cascade: Cascade, incident: Any, lines: list[tuple[str, str, str]]) -> Any:
    """The diagnose task inside a flow run, as recover runs it, its report an artifact."""
    from prefect import flow

    from tasks.diagnose import diagnose, diagnosis_artifact
    from tasks.runtime import load

    @flow(name="diagnose-e2e")
    def run() -> Any:
        diagnosis = diagnose(load(cascade.config_path), incident, lines)
        diagnosis_artifact(diagnosis)
        return diagnosis

    return run()


def test_the_dependency_that_went_down_first_ranks_first(cascade: Cascade) -> None:
    from prefect.artifacts import Artifact

    assert (cascade.orders.host, cascade.api.host) == ("web-3", "web-1")
    assert cascade.orders.detected_at < cascade.api.detected_at
    diagnosis = _diagnose(cascade, cascade.api, [])
    print(diagnosis.text)
    top = diagnosis.top
    assert (top.name, top.target) == ("dependency_down", "orders-db")
    assert top.confidence >= 0.85
    assert f"orders-db@web-3 service_down (#{cascade.orders.id}" in top.evidence[0]
    # the api's own probe says "connection refused": that is its symptom, not a refused dependency
    assert "dependency_refused" not in [c.name for c in diagnosis.causes]
    assert diagnosis.text.startswith("Probable cause: dependency_down (orders-db)")
    artifact = Artifact.get(f"incident-{cascade.api.id}-diagnosis")
    assert artifact is not None
    assert "| 1 | `dependency_down` | orders-db | 0.90 |" in artifact.data


def test_a_disk_full_line_makes_disk_full_the_cause(cascade: Cascade) -> None:
    lines = [
        ("web-3", "orders-db", "2026-11-29 02:40:01 LOG: checkpoint starting: time"),
        (
            "web-3",
            "orders-db",
            "2026-11-29 02:40:02 PANIC: could not write to file pg_wal/xlogtemp.91:"
            " No space left on device",
        ),
    ]
    diagnosis = _diagnose(cascade, cascade.orders, lines)
    print(diagnosis.text)
    top = diagnosis.top
    assert (top.name, top.target) == ("disk_full", "orders-db@web-3")
    assert "No space left on device" in top.evidence[0]
    # orders-db needs nothing: no dependency is blamed for its failure
    assert "dependency_down" not in [c.name for c in diagnosis.causes]
