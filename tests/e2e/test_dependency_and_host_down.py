"""Faults beyond one process, healed from the real watch loop on the sandbox: a database the
web service needs is stopped, and a host's link is cut. Configs are the README's shape; faults
come from the sandbox's own tools; the outcome is checked without Lazarus (pg_isready, the SSH
banner, /health, the mail sink)."""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from tests.e2e.conftest import variant

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("prefect_harness")]
ENDED = ("resolved", "escalated")


def store_of(sandbox: Any, name: str):
    from lazarus.store import Store

    return Store(sandbox.root / "state" / f"{name}.db")


def newest_id(sandbox: Any, name: str) -> int:
    store = store_of(sandbox, name)
    try:
        recent = store.recent(1)
        return recent[0].id if recent else 0
    finally:
        store.close()


def incidents_after(sandbox: Any, name: str, after: int) -> list[Any]:
    store = store_of(sandbox, name)
    try:
        return sorted((i for i in store.recent(50) if i.id > after), key=lambda i: i.id)
    finally:
        store.close()


def watch_until(
    config: Any, done: Callable[[], bool], timeout: float, each: Callable[[dict], None] = print
) -> int:
    """Run watch cycles on fixed ticks a second apart, as `lazarus serve` does (a cycle that
    overruns its tick makes the next one wait for the tick after), until ``done()``."""
    from flows.watch import watch

    started, first, cycles = time.time(), time.monotonic(), 0
    while time.time() - started < timeout:
        each(watch(str(config)))
        cycles += 1
        if done():
            return cycles
        time.sleep(1.0 - (time.monotonic() - first) % 1.0)  # to the next tick
    pytest.fail(f"not done after {cycles} watch cycles in {timeout:g}s")


def postgres_pid(sandbox: Any) -> int | None:
    conf = sandbox.host_dir(sandbox.database.host) / "supervisord.conf"
    out = subprocess.run(
        ["supervisorctl", "-c", str(conf), "pid", "postgres"], capture_output=True, text=True
    ).stdout.strip()
    return int(out) if out.isdigit() and int(out) > 0 else None


def pg_isready(sandbox: Any) -> bool:
    from lazarus.sandbox.postgres import PG_BIN

    db = sandbox.database
    done = subprocess.run(
        [str(PG_BIN / "pg_isready"), "-h", db.address, "-p", "5432", "-t", "3"], check=False
    )
    return done.returncode == 0


def database_drill(sandbox: Any, name: str) -> Any:
    """A config with a store of its own and 1 s cycles, warmed up; skipped without PostgreSQL."""
    from flows.drill import warm_up

    if sandbox.database is None:
        pytest.skip("the sandbox has no PostgreSQL (apt-get install postgresql-15)")
    config = variant(sandbox, name, {"state.path": f"state/{name}.db", "watch.interval": "1s"})
    warm_up(config, cycles=1)
    return config


def test_stopped_database_is_restarted_on_its_host_and_its_dependants_heal(healthy_sandbox):
    sb = healthy_sandbox
    name = "dep-db"
    config = database_drill(sb, name)
    web_pids = {h.name: sb.service_pid(h.name) for h in sb.hosts}
    db_pid = postgres_pid(sb)
    before = newest_id(sb, name)
    mails_before = len(sb.mail())

    sb.fault(sb.database.host, "db-stop")  # what `lazarus sandbox fault web-1 db-stop` does
    assert not pg_isready(sb) and sb.health("web-2") == 500

    def all_ended() -> bool:
        found = incidents_after(sb, name, before)
        return len(found) >= 4 and all(i.state in ENDED for i in found)

    watch_until(config, all_ended, timeout=150)
    found = incidents_after(sb, name, before)
    by_target = {i.target: i for i in found}
    db_incident = by_target.pop(f"orders-db@{sb.database.host}")
    assert db_incident.symptom == "service_down" and db_incident.state == "resolved"
    assert sorted(by_target) == [f"web@{h.name}" for h in sb.hosts]  # one per host, nothing else
    assert {i.state for i in by_target.values()} == {"resolved"}, [i.reason for i in found]
    # every dependant picked the dependency-down playbook: its diagnosis ranked the database first
    assert all(i.reason.startswith("dependency-down:") for i in by_target.values())
    store = store_of(sb, name)
    try:
        db_actions = [(a.action, a.target, a.ok) for a in store.actions(db_incident.id)]
        web_actions = {a.action for i in by_target.values() for a in store.actions(i.id)}
        deliveries = [d for i in found for d in store.deliveries(i.id)]
    finally:
        store.close()
    # the database was restarted on the host where it runs, once
    assert db_actions[0] == ("ssh.restart", f"restart@{sb.database.host}", True)
    assert web_actions == {"dependency.healthy", "http.check", "symptom.cleared"}
    # fault gone, checked without Lazarus; nothing else was restarted
    assert pg_isready(sb)
    assert postgres_pid(sb) not in (None, db_pid)
    assert {h.name: sb.health(h.name) for h in sb.hosts} == {h.name: 200 for h in sb.hosts}
    assert {h.name: sb.service_pid(h.name) for h in sb.hosts} == web_pids
    # told, and never told "escalated"
    assert not any(d.event == "escalated" for d in deliveries)
    mails = [str(m) for m in sb.mail()[mails_before:]]
    assert any("orders-db" in m for m in mails), "no mail about the database"
    assert not any("escalated" in m.lower() for m in mails), "a false escalation was mailed"


def _host_down_config(sandbox: Any, name: str) -> Any:
    """The sandbox config watching every second, with SSH metrics, one group per host and the
    README's inhibit rule (a host that is down silences its services' pages)."""
    return variant(
        sandbox,
        name,
        {
            "state.path": f"state/{name}.db",
            "watch.interval": "1s",
            "sources": [{"kind": "ssh_metrics"}],
            "notify.route": {"receiver": "oncall", "group_by": ["host"], "group_wait": "0s"},
            "notify.inhibit_rules": [
                {
                    "source_matchers": ['symptom="host_down"'],
                    "target_matchers": ['symptom="service_down"'],
                    "equal": ["host"],
                }
            ],
        },
    )


def _paused_runs() -> list[Any]:
    """The flow runs that wait for an answer on the session's Prefect server."""
    from prefect import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterState
    from prefect.client.schemas.filters import FlowRunFilterStateType as StateTypes
    from prefect.client.schemas.objects import StateType

    paused = FlowRunFilter(state=FlowRunFilterState(type=StateTypes(any_=[StateType.PAUSED])))
    with get_client(sync_client=True) as client:
        return client.read_flow_runs(flow_run_filter=paused)


def _approve_when_paused(stop: threading.Event, approved: list[str]) -> None:
    """Answer the host-unreachable approval form as a person would, through Prefect's API."""
    from prefect.flow_runs import resume_flow_run

    while not stop.is_set():
        for run in _paused_runs():
            answer = {"approver": "ana", "decision": "approve", "comment": "power-cycle it"}
            resume_flow_run(run.id, run_input=answer)
            approved.append(str(run.id))
        stop.wait(0.5)


def test_cut_host_is_one_host_down_page_and_comes_back_out_of_band(healthy_sandbox):
    from flows.drill import warm_up
    from lazarus.sandbox import _proc

    sb = healthy_sandbox
    cut = sb.hosts[1]  # not the database's host: only the cut host's own service fails
    name = "host-down"
    config = _host_down_config(sb, name)
    warm_up(config, cycles=1)
    others = {h.name: sb.service_pid(h.name) for h in sb.hosts if h.name != cut.name}
    before = newest_id(sb, name)
    mails_before = len(sb.mail())
    sb.fault(cut.name, "partition")  # `lazarus sandbox fault web-2 partition`
    assert not _proc.ssh_banner(cut.address, cut.ssh_port)

    metric_hosts: list[int] = []
    stop, approved = threading.Event(), []
    approver = threading.Thread(target=_approve_when_paused, args=(stop, approved), daemon=True)
    approver.start()

    def host_down_ended() -> bool:
        found = [i for i in incidents_after(sb, name, before) if i.symptom == "host_down"]
        return bool(found) and all(i.state in ENDED for i in found)

    try:
        watch_until(
            config,
            host_down_ended,
            timeout=180,
            each=lambda c: metric_hosts.append(c.get("metric_hosts", len(sb.hosts))),
        )
    finally:
        stop.set()
        approver.join(timeout=10)
    watch_until(
        config, lambda: all(i.state in ENDED for i in incidents_after(sb, name, before)), 60
    )

    found = incidents_after(sb, name, before)
    host_down = [i for i in found if i.symptom == "host_down"]
    assert [(i.host, i.service, i.state) for i in host_down] == [(cut.name, "", "resolved")]
    assert approved, "the reboot never asked for approval"
    assert {i.host for i in found} == {cut.name}  # nothing opened on the other hosts
    services = [i for i in found if i.service]
    assert [(i.target, i.symptom) for i in services] == [(f"web@{cut.name}", "service_down")]
    assert services[0].state == "resolved"
    store = store_of(sb, name)
    try:
        service_actions = store.actions(services[0].id)
        host_actions = [(a.action, a.ok) for a in store.actions(host_down[0].id)]
    finally:
        store.close()
    assert service_actions == []  # no restart storm on a host nobody can reach
    assert ("host.reboot", True) in host_actions and ("symptom.cleared", True) in host_actions
    # the healthy hosts' metrics came in every cycle while the host was away
    assert metric_hosts and min(metric_hosts) >= len(sb.hosts) - 1
    # fault gone, checked without Lazarus; the other hosts were left alone
    assert _proc.ssh_banner(cut.address, cut.ssh_port) and sb.health(cut.name) == 200
    assert {h: sb.service_pid(h) for h in others} == others
    # one page for the host; the service's page was inhibited
    firing = [m for m in sb.mail()[mails_before:] if "FIRING" in str(m.get("subject", ""))]
    assert len([m for m in firing if "host_down" in m["subject"]]) == 1, firing
    assert not [m for m in firing if "service_down" in m["subject"]], firing


def test_a_cut_host_back_before_anyone_approved_its_reboot_is_resolved_unrebooted(
    healthy_sandbox,
):
    """Nobody answers the reboot's approval (as under `lazarus serve` alone, where nobody can),
    and the host's link is mended meanwhile: the wait ends within seconds, nothing is rebooted,
    and the incident is resolved, not escalated once `approval.timeout` (15 min) ran out."""
    from flows.drill import warm_up
    from lazarus.sandbox import _proc

    sb = healthy_sandbox
    cut = sb.hosts[1]
    name = "host-back"
    config = _host_down_config(sb, name)
    warm_up(config, cycles=1)
    before = newest_id(sb, name)
    mails_before = len(sb.mail())
    sb.fault(cut.name, "partition")
    mended = threading.Event()

    def mend_once_asked() -> None:  # the reboot asks; mend the link instead of answering
        for _ in range(300):
            if _paused_runs():
                sb.fault(cut.name, "heal")
                mended.set()
                return
            time.sleep(0.5)

    mender = threading.Thread(target=mend_once_asked, daemon=True)
    mender.start()

    def ended() -> bool:
        found = [i for i in incidents_after(sb, name, before) if i.symptom == "host_down"]
        return bool(found) and all(i.state in ENDED for i in found)

    try:
        watch_until(config, ended, timeout=150)
    finally:
        mender.join(timeout=1)
    assert mended.is_set(), "the reboot never asked for approval"
    host_down = [i for i in incidents_after(sb, name, before) if i.symptom == "host_down"]
    assert [(i.host, i.state) for i in host_down] == [(cut.name, "resolved")], host_down
    store = store_of(sb, name)
    try:
        actions = [a.action for a in store.actions(host_down[0].id)]
    finally:
        store.close()
    assert "host.reboot" not in actions and "symptom.cleared" in actions, actions
    assert not _paused_runs()  # the wait was answered, not left paused
    # checked without Lazarus: the host answers, its service never stopped
    assert _proc.ssh_banner(cut.address, cut.ssh_port) and sb.health(cut.name) == 200
    mails = [str(m) for m in sb.mail()[mails_before:]]
    assert not any("escalated" in m.lower() for m in mails), "a false escalation was mailed"


def test_a_dependant_killed_while_its_database_is_down_is_started_once_it_is_back(
    healthy_sandbox,
):
    """`db-stop` on web-1 and `kill` on web-2 at once: web-2's diagnosis ranks the database
    first, and dependency-down waits for it; nothing answering on web-2 (its process gone),
    the playbook then starts it, instead of checking a dead service for 30 s and escalating."""
    sb = healthy_sandbox
    name = "dep-kill"
    config = database_drill(sb, name)
    others = {h.name: sb.service_pid(h.name) for h in sb.hosts if h.name != "web-2"}
    before = newest_id(sb, name)
    sb.fault(sb.database.host, "db-stop")
    sb.fault("web-2", "kill")

    def all_ended() -> bool:
        found = incidents_after(sb, name, before)
        return len(found) >= 4 and all(i.state in ENDED for i in found)

    watch_until(config, all_ended, timeout=150)
    found = {i.target: i for i in incidents_after(sb, name, before)}
    assert {t: i.state for t, i in found.items()} == {t: "resolved" for t in found}, [
        i.reason for i in found.values()
    ]
    killed = found["web@web-2"]
    assert (killed.symptom, killed.reason.split(":")[0]) == ("service_down", "dependency-down")
    store = store_of(sb, name)
    try:
        steps = [(a.action, a.ok) for a in store.actions(killed.id)]
    finally:
        store.close()
    assert steps[:2] == [("dependency.healthy", True), ("ssh.restart", True)], steps
    # as the hosts say: the database answers, every service too; only web-2's was started
    assert pg_isready(sb) and sb.service_pid("web-2") is not None
    assert {h.name: sb.health(h.name) for h in sb.hosts} == {h.name: 200 for h in sb.hosts}
    assert {h: sb.service_pid(h) for h in others} == others
