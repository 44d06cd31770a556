"""Ten targets fail at once, the fleet cap is 3: never more than 3 remediate at the same time,
and every one still recovers (the others wait for a slot). Real recover flows started side by
side as watch starts them, restarting over real SSH on the sandbox hosts."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
import yaml

from tests.e2e.conftest import variant

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("prefect_harness")]
FLEET = 10


def _fleet_config(sandbox: Any):
    """Ten inventory hosts over the sandbox's sshds; restart = a 2 s command; cap 3."""
    base = yaml.safe_load(sandbox.config_path.read_text())["inventory"]
    real = base["hosts"]
    hosts = [{**real[i % len(real)], "name": f"node-{i:02d}"} for i in range(FLEET)]
    services = [  # the sandbox's database is on a real host's name: it and web's need stay out
        {
            **{k: v for k, v in s.items() if k != "depends_on"},
            "control": {"kind": "command", "restart": "sleep 2"},
        }
        for s in base["services"]
    ]
    return variant(sandbox, "fleet", {
        "state.path": "state/fleet.db",
        "inventory.hosts": hosts,
        "inventory.services": services,
        "inventory.databases": [],
        "playbooks.fleet_cap": 3,
        "playbooks.fleet_wait": "2m",
    })  # fmt: skip


def test_ten_failures_with_a_cap_of_three(healthy_sandbox: Any) -> None:
    from flows.watch import PARALLEL_RECOVERIES, recover_all
    from lazarus.model import Anomaly
    from lazarus.playbooks import Guards
    from lazarus.store import Store

    config = _fleet_config(healthy_sandbox)
    store = Store(healthy_sandbox.root / "state" / "fleet.db")
    incidents = [
        store.open_incident(
            Anomaly(f"node-{i:02d}", "web", "service_down", "critical", "down", time.time())
        )[0].id
        for i in range(FLEET)
    ]
    Guards(store)  # its tables exist before the sampler reads them
    peak, done = [0], threading.Event()

    def sample() -> None:  # the leases table is the cap's own count of who is remediating
        for _ in range(20_000):
            with store.transaction() as db:
                (held,) = db.execute("SELECT COUNT(*) FROM fleet_leases").fetchone()
            peak[0] = max(peak[0], held)
            if done.wait(0.02):
                return

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        states = recover_all(incidents, str(config))  # as watch starts them, side by side
    finally:
        done.set()
        sampler.join(timeout=10)
    print(f"fleet cap 3, {FLEET} targets at once: peak {peak[0]} remediating, states {states}")
    assert states == ["resolved"] * FLEET and PARALLEL_RECOVERIES > 3
    assert 1 <= peak[0] <= 3
    restarts = [a for i in incidents for a in store.actions(i) if a.action == "ssh.restart"]
    store.close()
    assert len(restarts) == FLEET and all(a.ok for a in restarts)
