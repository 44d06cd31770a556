"""Faults of Lazarus itself on the sandbox: what a bad night does to it, and that nothing is
left half-done or lost."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.e2e.conftest import variant
from tests.e2e.prefect_server import BIN

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("prefect_harness")]

PAUSED = {
    "version": 1,
    "name": "service-down",
    "trigger": {"matchers": ['symptom="service_down"']},
    "steps": [
        {"id": "pause", "action": "wait", "with": {"duration": "5m"}},
        {"id": "restart", "action": "ssh.restart"},
    ],
}
RESTART = {
    "version": 1,
    "name": "restart-now",
    "trigger": {"matchers": ['symptom="never"']},
    "steps": [{"id": "restart", "action": "ssh.restart"}],
    "verify": [{"id": "cleared", "action": "symptom.cleared", "with": {"within": "30s"}}],
}


def _wait(what: str, check: Any, limit: float = 90.0) -> Any:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.5)
    pytest.fail(f"timed out waiting for {what}")


def test_a_recover_run_killed_mid_step_is_escalated_with_its_step_and_frees_its_slot(
    healthy_sandbox: Any, tmp_path: Path
) -> None:
    from prefect.settings import PREFECT_API_URL

    from flows.recover import run_recover
    from flows.watch import watch
    from lazarus.model import IncidentState
    from lazarus.store import Store

    sb = healthy_sandbox
    books = tmp_path / "playbooks"
    books.mkdir()
    (books / "service-down.yaml").write_text(yaml.safe_dump(PAUSED))
    (books / "restart-now.yaml").write_text(yaml.safe_dump(RESTART))
    config = variant(
        sb,
        "crash",
        {
            "state.path": "state/crash.db",
            "playbooks.dir": str(books),
            "playbooks.lease": "3s",
            "playbooks.fleet_cap": 1,
            "playbooks.fleet_wait": "1s",
        },
    )
    sb.fault("web-2", "kill")
    store = Store(sb.root / "state" / "crash.db")
    try:

        def opened() -> Any:
            watch(str(config), remediate=False)
            return next((i for i in store.active() if i.host == "web-2"), None)

        incident = _wait("the incident on web-2", opened)
        env = {**os.environ, "PREFECT_API_URL": PREFECT_API_URL.value()}
        proc = subprocess.Popen(
            [BIN / "lazarus", "recover", "-c", str(config), str(incident.id)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            _wait(
                "the recover run to reach its wait step",
                lambda: (
                    store._db.execute(
                        "SELECT 1 FROM recovery_leases WHERE incident_id = ? AND step = ?",
                        (incident.id, "steps/pause"),
                    ).fetchone()
                    if store._db.execute(
                        "SELECT 1 FROM sqlite_master WHERE name = 'recovery_leases'"
                    ).fetchone()
                    else None
                ),
                limit=120,
            )
        finally:
            os.killpg(proc.pid, signal.SIGKILL)  # kill -9 mid-recovery
            proc.wait(timeout=10)
        assert store.get(incident.id).state is IncidentState.REMEDIATING
        assert store._db.execute("SELECT COUNT(*) FROM fleet_leases").fetchone()[0] == 1

        # the next watch cycle after the lease ran out reconciles it
        def escalated() -> Any:
            watch(str(config), remediate=False)
            found = store.get(incident.id)
            return found if found.state is IncidentState.ESCALATED else None

        stuck = _wait("the reconciliation", escalated)
        assert "interrupted at step steps/pause" in stuck.reason
        assert store._db.execute("SELECT COUNT(*) FROM fleet_leases").fetchone()[0] == 0
        assert [a.action for a in store.actions(incident.id)][-1] == "reconcile"
        _wait("the page about it", lambda: [m for m in sb.mail() if "steps/pause" in str(m)])

        # nothing blocks a person's next run: the fleet slot (cap 1) is free again
        assert run_recover(incident.id, str(config), playbook="restart-now") == "resolved"
        assert sb.health("web-2") == 200  # checked on the host, not through Lazarus
    finally:
        store.close()


def test_the_dead_mans_page_and_heartbeat_need_neither_store_nor_watch(
    sinks: Any, mark: str, tmp_path: Path
) -> None:
    from lazarus.config import Config
    from lazarus.notify.deadman import page
    from lazarus.sources.heartbeat import beat

    mail = f"mailto://127.0.0.1:{sinks.smtp_port}?from=l@x.test&to=o@x.test"
    config = Config.model_validate(
        {
            "inventory": {"ssh": {"key": "k"}, "hosts": []},
            "notify": {
                "receivers": [
                    {"name": "chat", "urls": ["json://127.0.0.1:9/down"]},  # refused
                    {"name": "mail", "urls": [mail]},
                ],
                "route": {"receiver": "chat"},
                "fallback": "mail",
            },
            "watch": {"interval": f"{len(mark)}s", "dead_after": 3},
            "state": {"path": str(tmp_path / "gone" / "lazarus.db")},
            "base_dir": str(tmp_path),
        }
    )
    sent = page(config, 3 * len(mark))
    assert [(o.receiver, o.ok) for o in sent] == [("chat", False), ("mail", True)]
    assert any(
        f"no completed cycle for {3 * len(mark)}s" in m["subject"] for m in sinks.messages("mail")
    )
    assert not (tmp_path / "gone").exists()  # it never touched the store
    assert beat(f"http://127.0.0.1:{sinks.http_port}/beat/{mark}", timeout=5)
    assert any(mark in str(m) for m in sinks.messages("http"))
    assert not beat("http://127.0.0.1:9/beat", timeout=2)
