"""A skewed clock, from the running watch loop: `lazarus sandbox fault HOST skew` sets the host's
clock 30 s ahead as SSH sessions read it. Configured as the README shows
(`detectors.clock: {enabled: true, max_offset: 500ms}`), the fault is one `clock_skew`
incident, notified, with no sibling (`clock_offset_seconds_peer_outlier` …); it stays open
while the clock is off and resolves once it is mended. Nothing is restarted: no shipped
playbook acts on a clock, a person fixes NTP."""

from __future__ import annotations

import re
import subprocess
from typing import Any

import pytest

from tests.e2e.conftest import variant

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("prefect_harness")]

HOST = "web-2"


def _remote_date(sandbox: Any, host: str) -> float:
    """The host's clock as an SSH session reads it, with OpenSSH's client: not through Lazarus."""
    h = sandbox.host(host)
    key, known = sandbox.root / "id_ed25519", sandbox.root / "known_hosts"
    argv = ["ssh", "-i", str(key), "-p", str(h.ssh_port), "-o", "BatchMode=yes",
            "-o", f"UserKnownHostsFile={known}", f"root@{h.address}", "date +%s"]  # fmt: skip
    out = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=True)
    return float(out.stdout.strip())


def test_skewed_clock_is_one_incident_open_while_skewed_resolved_after(
    healthy_sandbox: Any,
) -> None:
    import time

    from flows.loop import watch_until
    from lazarus.model import IncidentState
    from lazarus.store import Store

    sb = healthy_sandbox
    config = variant(sb, "skew", {
        "state.path": "state/skew.db",
        "detectors.clock": {"enabled": True, "max_offset": "500ms"},
        "detectors.resolve_after": "5s",
    })  # fmt: skip
    store = Store(sb.root / "state" / "skew.db")
    pids = {h.name: sb.service_pid(h.name) for h in sb.hosts}
    mails_before = len(sb.mail())
    try:
        watch_until(str(config), interval=1.0, until=lambda r: len(r.cycles) >= 3)
        assert store.recent(10) == []  # agreeing clocks: nothing
        sb.fault(HOST, "skew")
        assert _remote_date(sb, HOST) - time.time() > 20  # independently: it is off

        def opened(_: Any) -> bool:
            return any(i.symptom == "clock_skew" for i in store.recent(10))

        watch_until(str(config), interval=1.0, until=opened)
        # 7 more cycles skewed (past resolve_after): still one incident, still open
        watch_until(str(config), interval=1.0, until=lambda r: len(r.cycles) >= 7)
        found = store.recent(10)
        assert len(found) == 1, [(i.fingerprint, i.summary) for i in found]
        incident = found[0]
        assert (incident.fingerprint, incident.host, incident.symptom) == (
            f"{HOST}/clock_skew", HOST, "clock_skew",
        )  # fmt: skip
        assert incident.state is not IncidentState.RESOLVED
        assert incident.state is not IncidentState.ESCALATED
        said = re.search(r"off by ([+-][0-9.]+)s", incident.summary)
        assert said and 25 < float(said.group(1)) < 35, incident.summary  # ~+30 s (29.998 too)
        assert store.actions(incident.id) == []  # no playbook acts on a clock

        sb.fault(HOST, "clear")
        assert abs(_remote_date(sb, HOST) - time.time()) < 5

        def resolved(_: Any) -> bool:
            return store.get(incident.id).state is IncidentState.RESOLVED

        watch_until(str(config), interval=1.0, until=lambda r: resolved(r) or len(r.cycles) > 30)
        assert resolved(None), store.get(incident.id)
        assert [i.id for i in store.recent(10)] == [incident.id]  # no sibling, ever
        mails = [m for m in sb.mail()[mails_before:] if f"clock_skew {HOST}" in str(m)]
        assert mails, "the on-call was not told"
        assert {h.name: sb.service_pid(h.name) for h in sb.hosts} == pids  # nothing restarted
    finally:
        store.close()
