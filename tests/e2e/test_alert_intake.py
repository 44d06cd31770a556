"""Alerts from a team's own stack: Debian's real Prometheus and Alertmanager, a rule on the
sandbox services, and `lazarus serve`'s web endpoint (``flows.serve.start_web``) as the
Alertmanager webhook receiver.

The config has no watch running beside the endpoint, so the only way the killed service can be
noticed is the rule firing and Alertmanager delivering it: the incident must carry the alert's
labels, and the shipped service-down playbook must restart the service.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from lazarus.sandbox.sinks import free_port
from tests.e2e.conftest import variant
from tests.e2e.prefect_server import stop

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("prefect_harness")]

PROMETHEUS = Path("/usr/bin/prometheus")
ALERTMANAGER = Path("/usr/bin/prometheus-alertmanager")
TOKEN = "intake-test-token"


def _spawn(argv: list[str], log: Path) -> subprocess.Popen:
    with open(log, "wb") as out:
        return subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


def _wait(what: str, ready: Callable[[], bool], timeout: float, logs: list[Path]) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        if time.monotonic() > deadline:
            tails = "\n".join(f"--- {p.name}\n{p.read_text()[-1500:]}" for p in logs)
            pytest.fail(f"{what} within {timeout:.0f}s\n{tails}")
        time.sleep(0.5)


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.fixture
def intake(healthy_sandbox: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """`lazarus serve`'s endpoint on a free port, for a config the README's way."""
    from flows.serve import start_web

    monkeypatch.setenv("LAZARUS_TEST_WEBHOOK_TOKEN", TOKEN)
    config = variant(healthy_sandbox, "alert-intake", {
        "state.path": str(tmp_path / "state.db"),
        "server": {"listen": "127.0.0.1:0", "token": "env:LAZARUS_TEST_WEBHOOK_TOKEN"},
    })  # fmt: skip
    web = start_web(config)
    assert web is not None
    try:
        yield web
    finally:
        web.stop()


@pytest.fixture
def alerting(healthy_sandbox: Any, intake: Any, tmp_path: Path) -> Iterator[None]:
    """Prometheus (1 s scrapes, a service-down rule) -> Alertmanager -> the intake webhook."""
    if not (PROMETHEUS.exists() and ALERTMANAGER.exists()):
        pytest.skip("needs Debian's prometheus and prometheus-alertmanager")
    am_port, prom_port = free_port(), free_port()
    am = f"127.0.0.1:{am_port}"
    (tmp_path / "token").write_text(TOKEN)
    (tmp_path / "alertmanager.yml").write_text(yaml.safe_dump({
        "route": {"receiver": "lazarus", "group_by": ["alertname", "host"],
                  "group_wait": "0s", "group_interval": "1s", "repeat_interval": "1h"},
        "receivers": [{"name": "lazarus", "webhook_configs": [{
            "url": f"{intake.url}/alerts/alertmanager", "send_resolved": True,
            "http_config": {"authorization": {"type": "Bearer",
                                              "credentials_file": str(tmp_path / "token")}},
        }]}],
    }))  # fmt: skip
    (tmp_path / "rules.yml").write_text(yaml.safe_dump({"groups": [{"name": "sandbox", "rules": [{
        "alert": "WebDown", "expr": 'up{job="web"} == 0', "for": "1s",
        "labels": {"symptom": "service_down", "severity": "critical", "team": "web-team"},
        "annotations": {"summary": "{{ $labels.host }} stopped answering scrapes"},
    }]}]}))  # fmt: skip
    targets = [
        {"targets": [f"{h.address}:{h.service_port}"], "labels": {"host": h.name, "service": "web"}}
        for h in healthy_sandbox.hosts
    ]
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump({
        "global": {"scrape_interval": "1s", "scrape_timeout": "800ms",
                   "evaluation_interval": "1s"},
        "rule_files": [str(tmp_path / "rules.yml")],
        "alerting": {"alertmanagers": [{"static_configs": [{"targets": [am]}]}]},
        "scrape_configs": [{"job_name": "web", "static_configs": targets}],
    }))  # fmt: skip
    logs = [tmp_path / "alertmanager.log", tmp_path / "prometheus.log"]
    manager = _spawn([
        str(ALERTMANAGER), f"--config.file={tmp_path / 'alertmanager.yml'}",
        f"--storage.path={tmp_path / 'am-data'}", f"--web.listen-address=127.0.0.1:{am_port}",
        "--cluster.listen-address=",
    ], logs[0])  # fmt: skip
    prom = _spawn([
        str(PROMETHEUS), f"--config.file={tmp_path / 'prometheus.yml'}",
        f"--storage.tsdb.path={tmp_path / 'prom-data'}",
        f"--web.listen-address=127.0.0.1:{prom_port}",
    ], logs[1])  # fmt: skip
    try:
        _wait("alertmanager up", lambda: _answers(f"http://127.0.0.1:{am_port}/-/ready"), 60, logs)

        def all_up() -> bool:
            try:
                r = httpx.get(
                    f"http://127.0.0.1:{prom_port}/api/v1/query",
                    params={"query": 'up{job="web"} == 1'},
                    timeout=2,
                )
                return len(r.json()["data"]["result"]) == len(healthy_sandbox.hosts)
            except (httpx.HTTPError, ValueError, KeyError):
                return False

        _wait("prometheus scraping every sandbox service", all_up, 60, logs)
        yield
    finally:
        stop(prom)
        stop(manager)


def test_a_rule_firing_in_alertmanager_is_healed_by_the_playbook(
    healthy_sandbox: Any, intake: Any, alerting: None, tmp_path: Path
) -> None:
    from lazarus.store import Store

    sb = healthy_sandbox
    killed = sb.service_pid("web-2")
    sb.fault("web-2", "kill")
    store = Store(tmp_path / "state.db")

    def healed() -> bool:
        return any(i.state == "resolved" and i.action_at for i in store.recent())

    _wait("the alert's incident resolved by a recovery", healed, 120, [])
    (incident,) = store.recent()
    assert (incident.host, incident.service, incident.symptom) == ("web-2", "web", "service_down")
    assert incident.labels["source"] == "alertmanager"
    assert incident.labels["alertname"] == "WebDown" and incident.labels["team"] == "web-team"
    assert [(a.action, a.ok) for a in store.actions(incident.id)][:1] == [("ssh.restart", True)]
    # checked independently of Lazarus: a new process answers health again
    assert sb.health("web-2") == 200
    assert sb.service_pid("web-2") not in (None, killed)
    # Alertmanager's repeats and its resolved notice opened nothing more
    time.sleep(3)
    assert [i.id for i in store.recent()] == [incident.id]
    store.close()
