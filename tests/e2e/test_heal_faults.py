"""Faults beyond a dead process, healed from the running watch on the sandbox, configured the
README's way: a full disk (ssh_metrics + a disk_full rule + clean_paths) and a bad release
(services[].releases). Faults come from sandbox tools; the checks read the hosts directly."""

from __future__ import annotations

import os
import shutil
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.e2e.conftest import variant
from tests.e2e.test_loop import mentions, store_of

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("prefect_harness")]

DISK_RULES = {
    "sources": [{"kind": "ssh_metrics"}],
    "detectors.rules": [
        {"series": "disk_used_ratio", "above": 0.9, "for": 1, "symptom": "disk_full"}
    ],
}


def _drill(sandbox: Any, host: str, mode: str, name: str, changes: dict[str, Any]) -> Any:
    """The drill, then the loop goes on until the outcome's message is out: a drill stops at
    the cycle that ended the incident, and the group's message may go out at the next one (CI
    once read the mail in between)."""
    from flows.drill import drill, warm_up
    from flows.loop import watch_until

    config = variant(sandbox, name, {"state.path": f"state/{name}.db", **changes})
    warm_up(config, cycles=1)
    result = drill(sandbox, host, mode, config_path=config, interval=1.0, timeout=90)
    if (incident := result.incident) is not None:
        group, outcome = f"{incident.symptom} {host}", incident.state.value

        def told(report: Any) -> bool:
            said = mentions(mentions(sandbox.mail(), group), outcome)
            return bool(said) or len(report.cycles) >= 10

        watch_until(str(config), interval=1.0, until=told)
    return result


def test_full_disk_is_cleaned_and_reported(healthy_sandbox: Any) -> None:
    sb = healthy_sandbox
    before = {h.name: sb.disk_used_percent(h.name) for h in sb.hosts}
    pids = {h.name: sb.service_pid(h.name) for h in sb.hosts}
    result = _drill(sb, "web-2", "fill-disk", "heal-disk", DISK_RULES)
    incident = result.incident
    assert incident is not None, "no incident opened"
    assert (incident.symptom, incident.labels["mount"]) == ("disk_full", str(sb.disk_dir("web-2")))
    assert incident.state == "resolved", incident.reason
    # The disk, as the host's own df sees it: freed; the other hosts' disks as they were.
    assert sb.disk_used_percent("web-2") < 50
    assert {h: sb.disk_used_percent(h) for h in before if h != "web-2"} == {
        h: v for h, v in before.items() if h != "web-2"
    }
    assert {h.name: sb.service_pid(h.name) for h in sb.hosts} == pids
    store = store_of(sb, "heal-disk")
    actions = [(a.action, a.ok) for a in store.actions(incident.id)]
    others = [i for i in store.recent(50) if i.host != "web-2"]
    store.close()
    assert actions == [("disk.clean", True), ("notify", True)]
    assert others == [], [i.fingerprint for i in others]
    # Opened, the report with the bytes freed, resolved; never "escalated".
    said = mentions(sb.mail(), "disk_full web-2")
    assert mentions(said, "freed") and mentions(said, "resolved"), said
    assert not mentions(said, "escalated")


def test_bad_release_is_diagnosed_and_rolled_back(healthy_sandbox: Any) -> None:
    from lazarus import changes

    sb = healthy_sandbox
    releases = {h.name: os.readlink(sb.releases_dir(h.name) / "current") for h in sb.hosts}
    pids = {h.name: sb.service_pid(h.name) for h in sb.hosts if h.name != "web-3"}
    result = _drill(sb, "web-3", "bad-release", "heal-release", {})  # nobody answers anything
    incident = result.incident
    assert incident is not None, "no incident opened"
    assert incident.symptom == "service_unhealthy"
    assert incident.state == "resolved", incident.reason
    # The release, as the host's folder says, and the service's own answer.
    assert os.readlink(sb.releases_dir("web-3") / "current") == releases["web-3"] == "v1"
    assert sb.health("web-3") == 200
    assert {h: os.readlink(sb.releases_dir(h) / "current") for h in pids} == {
        h: releases[h] for h in pids
    }
    assert {h: sb.service_pid(h) for h in pids} == pids
    store = store_of(sb, "heal-release")
    actions = [(a.action, a.ok) for a in store.actions(incident.id)]
    seen = changes.since(store, result.fault_at - 60)
    store.close()
    assert actions == [  # a rollback is reversible: it runs without waiting for a person
        ("release.rollback", True),
        ("http.check", True),
        ("symptom.cleared", True),
    ], actions
    # The deploy's switch and restart are changes; the rollback's restart is Lazarus's own
    # (in the actions above), not a change, though the watch saw the unit start again.
    assert sorted((c.kind, c.host) for c in seen) == [("release", "web-3"), ("restart", "web-3")]
    assert all(c.at <= incident.detected_at for c in seen), seen
    # Diagnosed from the recorded change, named in the outcome message; never escalated.
    said = mentions(sb.mail(), "service_unhealthy web@web-3")
    assert mentions(said, "bad_release") and mentions(said, "v1 -> v2"), said
    assert mentions(said, "resolved") and not mentions(said, "escalated")


STUCK = {  # web-1's own playbook: its first step waits far longer than a run may take
    "version": 1,
    "name": "a-stuck-restart",  # sorts before service-down: it is web-1's match
    "trigger": {"matchers": ['symptom="service_down"', 'host="web-1"']},
    "steps": [
        {"id": "pause", "action": "wait", "with": {"duration": "10m"}},
        {"id": "restart", "action": "ssh.restart"},
    ],
}


def test_a_recovery_runs_beside_the_loop_and_ends_at_its_bound(
    healthy_sandbox: Any, tmp_path: Path
) -> None:
    """While web-1's recovery is stuck, the loop goes on probing: web-2, killed then, is
    detected and healed by a recover run of its own; web-1's run is ended at its bound and
    escalated with the reason, never left remediating."""
    from flows.drill import warm_up
    from flows.loop import watch_until
    from lazarus import cycles
    from lazarus.model import IncidentState
    from lazarus.sandbox.files import PLAYBOOKS

    sb = healthy_sandbox
    books = tmp_path / "playbooks"
    shutil.copytree(PLAYBOOKS, books)
    (books / "a-stuck-restart.yaml").write_text(yaml.safe_dump(STUCK))
    config = variant(sb, "beside", {
        "state.path": "state/beside.db", "playbooks.dir": str(books), "playbooks.timeout": "15s",
    })  # fmt: skip
    warm_up(config, cycles=1)
    store = store_of(sb, "beside")
    first = max((i.id for i in store.recent(1)), default=0)
    found: dict[str, Any] = {}
    stop = threading.Event()

    def newest(host: str) -> Any:
        return next((i for i in store.recent(20) if i.id > first and i.host == host), None)

    def second_fault() -> None:  # lands while web-1's recover run is stuck in its wait
        while not stop.wait(0.2):
            stuck = newest("web-1")
            if stuck is not None and stuck.state is IncidentState.REMEDIATING:
                sb.fault("web-2", "kill")
                found["kill"] = time.time()
                return

    def both_ended(_: Any) -> bool:
        ended = (IncidentState.RESOLVED, IncidentState.ESCALATED)
        found.update({h: i for h in ("web-1", "web-2") if (i := newest(h)) is not None})
        done = all(h in found and found[h].state in ended for h in ("web-1", "web-2"))
        return done or time.monotonic() > give_up

    injector = threading.Thread(target=second_fault, daemon=True)
    give_up = time.monotonic() + 240  # a recover run that starts late still ends (Recoveries)
    sb.fault("web-1", "kill")
    injector.start()
    try:
        watch_until(str(config), interval=1.0, until=both_ended)
        stuck, healed = found.get("web-1"), found.get("web-2")
        history = cycles.history(store, "1/1")
        actions = [(a.action, a.ok) for a in store.actions(healed.id)] if healed else []
    finally:
        stop.set()
        injector.join(timeout=30)
        store.close()
    assert stuck is not None and healed is not None, found
    assert stuck.state is IncidentState.ESCALATED, stuck.reason
    assert "outlived its bound of 15s" in stuck.reason, stuck.reason
    # web-2 was detected while web-1's run was still going: the loop did not wait for it.
    assert stuck.action_at < healed.detected_at < stuck.closed_at, (stuck, healed)
    during = [c for c in history if stuck.action_at < c.started and c.finished]
    assert any(c.finished < stuck.closed_at for c in during), history  # whole cycles meanwhile
    # web-2 healed by its own run, checked on the host; web-1 never restarted by its run.
    assert healed.state is IncidentState.RESOLVED, healed.reason
    assert actions[0] == ("ssh.restart", True), actions
    assert sb.health("web-2") == 200
    assert sb.service_pid("web-1") is None


AFTER = [("web-3", "bad-release"), ("web-3", "kill")]


def test_each_fault_after_a_healed_one_is_diagnosed_afresh(healthy_sandbox: Any) -> None:
    """Drills one after another, as `lazarus sandbox fault` runs them: web-3's bad release,
    rolled back; then web-3's service killed. The release already rolled back is not blamed
    for the kill (a rollback from v1 has nowhere to go: escalated): each fault is recovered by
    its own playbook and resolved. tests/unit/test_diagnose_rank.py covers a healed
    dependency's incident the same way."""
    from flows.drill import warm_up
    from flows.loop import watch_until
    from lazarus.config import load_config
    from lazarus.diagnose.evidence import failing_before

    sb = healthy_sandbox
    config = variant(sb, "afresh", {"state.path": "state/afresh.db", "watch.interval": "1s"})
    settle = failing_before(load_config(config)) + 0.5  # the last fault is past doubt
    warm_up(config, cycles=1)
    store = store_of(sb, "afresh")
    healed = {
        "bad-release": lambda host: os.readlink(sb.releases_dir(host) / "current") == "v1",
        "kill": lambda host: sb.health(host) == 200,
    }
    marks: list[int] = []  # the newest incident id before each fault
    give_up = time.monotonic() + 240  # a recover run that starts late still ends (Recoveries)

    def phase(_: Any) -> bool:
        """Inject the next fault once the last one healed (checked on the host) and its
        incidents ended a moment ago; done after the last."""
        if marks:
            host, mode = AFTER[len(marks) - 1]
            found = [i for i in store.recent(20) if i.id > marks[-1]]
            ended = found and all(i.closed_at for i in found) and healed[mode](host)
            if not ended or time.time() - max(i.closed_at for i in found) < settle:
                return time.monotonic() > give_up
            if len(marks) == len(AFTER):
                return True
        marks.append(max((i.id for i in store.recent(1)), default=0))
        sb.fault(*AFTER[len(marks) - 1])
        return False

    try:
        watch_until(str(config), interval=1.0, until=phase)
        seen = store.recent(40)
        ran = [[i for i in seen if lo < i.id and (hi is None or i.id <= hi)]
               for lo, hi in zip(marks, [*marks[1:], None], strict=True)]  # fmt: skip
        actions = {i.id: [(a.action, a.ok) for a in store.actions(i.id)] for p in ran for i in p}
    finally:
        store.close()
    assert len(marks) == len(AFTER), f"stuck after {AFTER[len(marks) - 1]}: {ran[-1]}"
    assert all(i.state == "resolved" for p in ran for i in p), [
        (i.id, i.reason) for p in ran for i in p
    ]
    (release, kill) = ran
    assert [i.reason.split(":")[0] for i in release] == ["bad-release"], release
    assert [i.reason.split(":")[0] for i in kill] == ["service-down"], kill
    done = {action for action, ok in actions[kill[0].id] if ok}
    assert "ssh.restart" in done and "release.rollback" not in done, actions
    # the faults gone, as the hosts say: the good release, every service answering
    assert os.readlink(sb.releases_dir("web-3") / "current") == "v1"
    assert {h.name: sb.health(h.name) for h in sb.hosts} == {h.name: 200 for h in sb.hosts}
