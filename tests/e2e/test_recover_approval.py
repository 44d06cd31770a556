"""Approval, through the recover flow on a real Prefect API.

A release rollback under ``approval: {required: always}`` pauses the flow run with the Approval
form; the test answers it as `lazarus approve INCIDENT --as NAME` does
(``resume_flow_run(run_input=...)``, the call the UI's resume form makes). Only a listed
approver's answer counts; the decision lands in the audit, the report and the outcome message.
An approval that never comes rejects, escalates and changes nothing.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
import yaml

from tests.e2e.conftest import variant

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("prefect_harness")]
ROOT = Path(__file__).parents[2]


def _setup(sandbox: Any, tmp_path: Path, name: str, timeout: str) -> tuple[Path, int, Path]:
    """A config whose bad-release playbook waits ``timeout`` for approval; an incident for it."""
    from lazarus.model import Anomaly
    from lazarus.store import Store

    releases = tmp_path / "releases"  # the sandbox hosts share this machine's file system
    for release in ("r1", "r2"):
        (releases / release).mkdir(parents=True)
    (releases / "current").symlink_to("r2")
    books = tmp_path / "playbooks"
    books.mkdir()
    book = yaml.safe_load((ROOT / "playbooks" / "bad-release.yaml").read_text())
    book["approval"] = {"required": "always", "timeout": timeout, "approvers": ["ana"]}
    (books / "bad-release.yaml").write_text(yaml.safe_dump(book))
    config = variant(sandbox, name, {
        "state.path": f"state/{name}.db", "playbooks.dir": str(books),
        "inventory.services.0.releases": {"dir": str(releases)},
    })  # fmt: skip
    store = Store(sandbox.root / "state" / f"{name}.db")
    try:
        anomaly = Anomaly("web-1", "web", "service_unhealthy", "critical", "5xx after deploy",
                          time.time())  # fmt: skip
        incident, _ = store.open_incident(anomaly)
    finally:
        store.close()
    return config, incident.id, releases


def _start(config: Path, incident_id: int) -> tuple[threading.Thread, dict[str, str]]:
    from flows.recover import run_recover

    outcome: dict[str, str] = {}

    def run() -> None:
        outcome["state"] = run_recover(
            incident_id, str(config), playbook="bad-release", actor="ana"
        )

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, outcome


def _paused_run(limit: int = 60) -> UUID:
    """The recover flow run once it waits for its approval form."""
    from prefect import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterState
    from prefect.client.schemas.filters import FlowRunFilterStateType as StateTypes
    from prefect.client.schemas.objects import StateType

    paused = FlowRunFilter(state=FlowRunFilterState(type=StateTypes(any_=[StateType.PAUSED])))
    for _ in range(limit):
        with get_client(sync_client=True) as client:
            runs = client.read_flow_runs(flow_run_filter=paused)
        if runs:
            return runs[0].id
        time.sleep(1)
    pytest.fail("the recover flow never paused for approval")


def _store(sandbox: Any, name: str):
    from lazarus.store import Store

    return Store(sandbox.root / "state" / f"{name}.db")


def test_approved_rollback_runs_after_the_form_is_answered(healthy_sandbox: Any, tmp_path: Path):
    from flows.approval import answer
    from lazarus.config import load_config
    from lazarus.oncall import report_markdown

    config, incident_id, releases = _setup(healthy_sandbox, tmp_path, "approve", "5m")
    thread, outcome = _start(config, incident_id)
    _paused_run()
    assert os.readlink(releases / "current") == "r2", "acted before approval"
    mails = [m for m in healthy_sandbox.mail() if "waiting for approval" in str(m)]
    assert mails and "release.rollback on web-1" in str(mails[-1]), "the on-call was not asked"
    cfg = load_config(config)
    said = answer(cfg, incident_id, "bob", "approve", "looks fine")
    assert said == f"refused: bob may not approve incident #{incident_id}"
    assert os.readlink(releases / "current") == "r2", "acted on a refused approval"
    said = answer(cfg, incident_id, "ana", "approve", "roll it back")
    assert said == f"approved by ana: incident #{incident_id}"
    thread.join(timeout=120)
    assert outcome.get("state") == "resolved"
    assert os.readlink(releases / "current") == "r1"
    store = _store(healthy_sandbox, "approve")
    try:
        actions = [(a.action, a.actor, a.ok) for a in store.actions(incident_id)]
        report = report_markdown(store, store.get(incident_id), time.time())
    finally:
        store.close()
    assert ("oncall.approve", "ana", True) in actions
    assert ("release.rollback", "ana", True) in actions
    assert "| approved | ana | ok: roll it back |" in report
    assert "- approval: ana (roll it back)" in report
    assert healthy_sandbox.health("web-1") == 200


def test_an_approval_that_never_comes_rejects_and_changes_nothing(
    healthy_sandbox: Any, tmp_path: Path
):
    config, incident_id, releases = _setup(healthy_sandbox, tmp_path, "noanswer", "3s")
    thread, outcome = _start(config, incident_id)
    thread.join(timeout=120)
    assert outcome.get("state") == "escalated"
    assert os.readlink(releases / "current") == "r2"
    store = _store(healthy_sandbox, "noanswer")
    try:
        incident = store.get(incident_id)
        actions = store.actions(incident_id)
    finally:
        store.close()
    assert "rejected" in incident.reason and "not approved" in incident.reason
    assert actions == []
