"""Faults beyond a dead process, healed from the running watch on the sandbox, configured the
README's way: a full disk (ssh_metrics + a disk_full rule + clean_paths) and a bad release
(services[].releases). Faults come from sandbox tools; the checks read the hosts directly."""

from __future__ import annotations

import os
from typing import Any

import pytest

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
    from flows.drill import drill, warm_up

    config = variant(sandbox, name, {"state.path": f"state/{name}.db", **changes})
    warm_up(config, cycles=1)
    return drill(sandbox, host, mode, config_path=config, interval=1.0, timeout=90)


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
    store.close()
    assert actions == [  # a rollback is reversible: it runs without waiting for a person
        ("release.rollback", True),
        ("http.check", True),
        ("symptom.cleared", True),
    ], actions
    # Diagnosed from the recorded change, named in the outcome message; never escalated.
    said = mentions(sb.mail(), "service_unhealthy web@web-3")
    assert mentions(said, "bad_release") and mentions(said, "v1 -> v2"), said
    assert mentions(said, "resolved") and not mentions(said, "escalated")
