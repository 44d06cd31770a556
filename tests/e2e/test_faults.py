"""Faults of Lazarus itself on the sandbox: what a bad night does to it, and that nothing is
left half-done or lost."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.e2e.conftest import variant
from tests.e2e.prefect_server import BIN, stop

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
    healthy_sandbox: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
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
            "watch.interval": "1s",  # the test's cycles: a lapse is seen sooner
            "playbooks.dir": str(books),
            # short: the handed-over step waits eight lease periods for a taker before it
            # escalates; no cycle runs while the recover run lives, so nothing reconciles it
            "playbooks.lease": "2s",
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

        # nothing blocks a person's next run: the fleet slot (cap 1) is free again; what it
        # did is kept before the incident shows resolved, so no message says so without it
        kept: list[list[str]] = []
        transition = Store.transition

        def spy(self: Store, incident_id: int, to: IncidentState, **kw: Any) -> Any:
            if to is IncidentState.RESOLVED:
                row = self._db.execute(
                    "SELECT lines FROM notify_outcomes WHERE incident_id = ?", (incident_id,)
                ).fetchone()
                kept.append(json.loads(row[0]) if row else [])
            return transition(self, incident_id, to, **kw)

        monkeypatch.setattr(Store, "transition", spy)
        assert run_recover(incident.id, str(config), playbook="restart-now") == "resolved"
        assert len(kept) == 1 and any(line.startswith("steps/") for line in kept[0]), kept
        assert sb.health("web-2") == 200  # checked on the host, not through Lazarus
    finally:
        store.close()


def test_an_incident_whose_recover_run_died_before_its_claim_is_handed_over_once(
    healthy_sandbox: Any,
) -> None:
    """The automation's recover run died before it claimed its incident (its worker killed as
    it started), so no lease lapses: here no run started at all (``remediate=False``, as the
    deployed watch runs). Two lease periods later the watch hands it over, once (recorded in
    the audit), and a watch that remediates runs it: the service heals."""
    from flows.watch import watch
    from lazarus.model import IncidentState
    from lazarus.store import Store

    sb, host = healthy_sandbox, "web-3"
    config = variant(sb, "unclaimed", {"state.path": "state/unclaimed.db", "playbooks.lease": "2s"})
    sb.fault(host, "kill")
    store = Store(sb.root / "state" / "unclaimed.db")
    try:

        def opened() -> Any:
            watch(str(config), remediate=False)
            return next((i for i in store.active() if i.host == host), None)

        incident = _wait(f"the incident on {host}", opened)
        time.sleep(4.5)  # two lease periods: no run claimed it
        counts = watch(str(config))
        healed = store.get(incident.id)
        audit = [(a.action, a.target) for a in store.actions(incident.id)]
        watch(str(config))  # once: a later cycle hands nothing over again
        again = [(a.action, a.target) for a in store.actions(incident.id)]
    finally:
        store.close()
    assert healed.state is IncidentState.RESOLVED, (healed.reason, audit)
    assert counts["resolved"] == 1
    assert sb.health(host) == 200  # on the host, not through Lazarus
    assert audit[0] == ("reconcile", f"(before the first step)@{host}")
    assert again.count(audit[0]) == 1


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


# --- outages: the mail server, Prometheus and the state disk -----------------------------------
# One module fixture for the three: its own mail sink (stopped and started on its ports), a real
# Prometheus (stopped and started on its port), the store on a 16 MiB tmpfs, a 1 s interval.


class _Prometheus:
    """Debian's prometheus on a free loopback port, scraping itself; stopped by its PID."""

    def __init__(self, root: Path):
        from lazarus.sandbox.sinks import free_port

        self.root, self.port = root, free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None
        scrape = {"job_name": "self", "static_configs": [{"targets": [f"127.0.0.1:{self.port}"]}]}
        config = {"global": {"scrape_interval": "1s"}, "scrape_configs": [scrape]}
        (root / "prometheus.yml").write_text(yaml.safe_dump(config))

    def start(self) -> None:
        import httpx

        with open(self.root / "prometheus.log", "ab") as out:
            self.proc = subprocess.Popen(
                [
                    "/usr/bin/prometheus",
                    f"--config.file={self.root / 'prometheus.yml'}",
                    f"--storage.tsdb.path={self.root / 'data'}",
                    f"--web.listen-address=127.0.0.1:{self.port}",
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

        def ready() -> bool:
            try:
                return httpx.get(f"{self.url}/-/ready", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        _wait("prometheus to be ready", ready, limit=60)

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None:
            stop(proc)


class _Outage:
    def __init__(self, sb: Any, pager: Any, prom: _Prometheus, disk: Path, config: Path):
        self.sb, self.pager, self.prom, self.disk, self.config = sb, pager, prom, disk, config

    def cycle(self) -> None:
        from flows.watch import watch

        watch(str(self.config), remediate=False)

    def store(self) -> Any:
        from lazarus.store import Store

        return Store(self.disk / "lazarus.db")

    def active(self) -> list[Any]:
        store = self.store()
        try:
            return store.active()
        finally:
            store.close()

    def beats(self) -> int:
        """Heartbeats the outside checker (the pager's HTTP sink) got."""
        return sum(m["path"] == "/beat" for m in self.pager.messages("http"))

    def mails(self, prefix: str, target: str) -> list[str]:
        """Subjects of the pager's mails that start with ``prefix`` and name ``target``."""
        subjects = [m["subject"] for m in self.pager.messages("mail")]
        return [s for s in subjects if s.startswith(prefix) and target in s]

    def until(self, what: str, check: Any, limit: float = 120.0) -> Any:
        """Run watch cycles until ``check()`` is true (bounded)."""

        def step() -> Any:
            self.cycle()
            return check()

        return _wait(what, step, limit=limit)


@pytest.fixture(scope="module")
def outage(sandbox: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[_Outage]:
    from lazarus.sandbox.sinks import SinkProcess

    if not Path("/usr/bin/prometheus").exists():
        pytest.skip("needs /usr/bin/prometheus (apt-get install prometheus)")
    root = tmp_path_factory.mktemp("outage")
    disk = root / "state-disk"
    disk.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(disk)], check=True)
    (root / "prometheus").mkdir()
    prom = _Prometheus(root / "prometheus")
    try:
        with SinkProcess(root / "pager") as pager:
            mail = f"mailto://127.0.0.1:{pager.smtp_port}?from=l@x.test&to=oncall@x.test"
            config = variant(
                sandbox,
                "outage",
                {
                    "state.path": str(disk / "lazarus.db"),
                    "watch.interval": 1,
                    "watch.heartbeat": f"http://127.0.0.1:{pager.http_port}/beat",
                    "notify": {
                        "receivers": [{"name": "oncall", "urls": [mail]}],
                        "route": {
                            "receiver": "oncall",
                            "group_by": ["..."],
                            "group_wait": "0s",
                            "group_interval": "1s",
                        },
                        "retries": 0,
                        "timeout": "3s",
                    },
                    "sources": [{"kind": "prometheus", "url": prom.url, "queries": {"up": "up"}}],
                    "detectors.source_failures": 2,
                    "recovery.enabled": False,
                },
            )
            prom.start()
            yield _Outage(sandbox, pager, prom, disk, config)
    finally:
        prom.stop()
        subprocess.run(["umount", "--lazy", str(disk)], check=False)


def test_smtp_down_then_back_the_firing_page_arrives_once(
    healthy_sandbox: Any, outage: _Outage
) -> None:
    target = "web@web-2"
    outage.cycle()
    outage.pager.stop()  # the mail server is down
    try:
        outage.sb.fault("web-2", "kill")
        store = outage.store()
        try:

            def tried() -> Any:
                found = [i for i in store.active() if i.target == target]
                failed = store._db.execute(
                    "SELECT COUNT(*) FROM notify_sends WHERE ok = 0 AND key LIKE '%web-2%'"
                ).fetchone()[0]
                return found[0] if found and failed else None

            incident = outage.until("a page tried while SMTP is down", tried)
            assert incident.notified_at is None  # not delivered, so not notified
            outage.cycle()  # one more flush while it is down: still kept, not lost
        finally:
            store.close()
    finally:
        outage.pager.restart()  # the mail server is back, on its port
    outage.until("the FIRING page", lambda: outage.mails("[FIRING", target))
    for _ in range(2):  # later flushes send nothing again
        outage.cycle()
    assert len(outage.mails("[FIRING", target)) == 1
    store = outage.store()
    try:
        assert store.get(incident.id).notified_at is not None
    finally:
        store.close()
    outage.sb.fault("web-2", "clear")
    outage.until("the RESOLVED page", lambda: outage.mails("[RESOLVED", target))
    assert len(outage.mails("[FIRING", target)) == 1
    assert outage.sb.health("web-2") == 200


def test_prometheus_down_is_one_source_down_incident_that_pages_and_resolves(
    healthy_sandbox: Any, outage: _Outage
) -> None:
    target = f"prometheus@127.0.0.1:{outage.prom.port}"
    outage.cycle()
    before = {i.fingerprint for i in outage.active()}
    outage.prom.stop()
    try:
        page = outage.until("the source_down page", lambda: outage.mails("[FIRING", target))
        assert "source_down" in page[0]
        opened = [i for i in outage.active() if i.fingerprint not in before]
        assert [(i.symptom, i.target) for i in opened] == [("source_down", target)]  # no flood
        assert "ConnectError" in opened[0].labels["error"]
    finally:
        outage.prom.start()
    outage.until("the RESOLVED page", lambda: outage.mails("[RESOLVED", target))
    assert not [i for i in outage.active() if i.symptom == "source_down"]
    assert len(outage.mails("[FIRING", target)) == 1


def test_state_disk_full_pages_directly_and_a_killed_service_is_seen_once_it_has_room(
    healthy_sandbox: Any, outage: _Outage
) -> None:
    from flows.loop import watch_until

    target = "web@web-3"
    outage.cycle()
    beats = outage.beats()
    assert beats >= 1  # every completed cycle beats for an outside checker
    filler = outage.disk / "filler"
    with filler.open("wb", buffering=0) as out, contextlib.suppress(OSError):
        while True:  # the state disk is full
            out.write(b"\0" * 65536)
    outage.sb.fault("web-3", "kill")
    deadline = time.monotonic() + 120

    def paged(report: Any) -> bool:
        assert time.monotonic() < deadline, "no page about the full state disk"
        return bool(outage.mails("[CRITICAL] Lazarus cannot write its state", ""))

    report = watch_until(str(outage.config), until=paged)
    assert report.failed >= 1
    (page,) = [m for m in outage.pager.messages("mail") if "cannot write" in m["subject"]]
    assert target in str(page)  # it still probes: the page names what fails now
    more = watch_until(str(outage.config), until=lambda r: r.failed >= 3)  # still failing
    assert more.cycles == []
    assert outage.beats() == beats  # no beat from a failed cycle: the checker would page too
    filler.unlink()  # room again
    deadline = time.monotonic() + 120

    def seen(report: Any) -> bool:
        assert time.monotonic() < deadline, "the killed service was not seen"
        return bool(outage.mails("[FIRING", target))

    watch_until(str(outage.config), until=seen)
    assert len(outage.mails("[CRITICAL] Lazarus cannot write its state", "")) == 1  # rate-limited
    assert [i.state for i in outage.active() if i.target == target] == ["notified"]
    store = outage.store()
    try:
        assert store._db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"  # nothing half
    finally:
        store.close()


def test_a_hung_sshd_costs_only_its_own_timeouts_and_a_kill_elsewhere_still_heals(
    healthy_sandbox: Any,
) -> None:
    """web-1's sshd and sessions frozen (SIGSTOP): every cycle still reads web-2's and web-3's
    SSH metrics, web-1 is dialled again only after its back-off, and web-2's killed service is
    restarted from the watch loop."""
    from flows.drill import warm_up
    from flows.loop import watch_until
    from lazarus.model import IncidentState
    from lazarus.remote.pool import shared_executor
    from lazarus.store import Store
    from tasks.runtime import load

    sb = healthy_sandbox
    config = variant(
        sb,
        "ssh-hang",
        {
            "state.path": "state/ssh-hang.db",
            "sources": [{"kind": "ssh_metrics"}],
            "inventory.ssh.connect_timeout": 1,  # what a hung sshd costs a dial
        },
    )
    warm_up(config, cycles=1)  # every host's connection is open before the hang
    loaded = load(config)
    backoff = shared_executor(loaded.inventory.ssh, loaded.base_dir).backoff
    store = Store(sb.root / "state" / "ssh-hang.db")
    fresh: list[set[str]] = []  # per cycle: hosts whose load1 was read in it
    waits: list[str] = []  # why web-1 is not dialled, as the loop goes
    sb.fault("web-1", "ssh-hang")
    try:
        sb.fault("web-2", "kill")

        def healed(report: Any) -> bool:
            if len(report.cycles) > len(fresh):
                rows = (
                    store._db.execute(
                        "SELECT labels FROM detector_series WHERE series = 'load1' AND silent = 0"
                    )
                    if store._db.execute(
                        "SELECT 1 FROM sqlite_master WHERE name = 'detector_series'"
                    ).fetchone()
                    else []
                )
                fresh.append({json.loads(r[0])["host"] for r in rows})
            waits.append(backoff.waiting("web-1"))
            on_web2 = [i for i in store.recent(20) if i.host == "web-2"]
            ended = bool(
                on_web2 and on_web2[-1].state in (IncidentState.RESOLVED, IncidentState.ESCALATED)
            )
            return (ended and len(fresh) >= 8) or len(fresh) > 60

        watch_until(str(config), interval=1.0, until=healed)
        incident = [i for i in store.recent(20) if i.host == "web-2"][-1]
        dials = backoff.failures("web-1")
    finally:
        sb.fault("web-1", "clear")
        store.close()
    assert incident.state is IncidentState.RESOLVED, incident.reason
    assert sb.health("web-2") == 200  # checked on the host, not through Lazarus
    assert all({"web-2", "web-3"} <= hosts for hosts in fresh), fresh
    assert not any("web-1" in hosts for hosts in fresh), fresh
    assert 1 <= dials < len(fresh)  # failed, and dialled again only after each back-off
    assert any("ConnectTimeout" in why for why in waits), waits  # transient: retried
