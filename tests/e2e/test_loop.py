"""The closed loop on real parts: sandbox hosts (sshd + supervisord), SMTP and chat sinks,
Prefect flows. Each test injects one fault and follows it through to the incident's end."""

from __future__ import annotations

import itertools
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import stand_in, variant

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("prefect_harness")]


def run_drill(sandbox: Any, host: str, mode: str, name: str, changes: dict[str, Any] | None = None):
    from flows.drill import drill, warm_up

    config = variant(sandbox, name, {"state.path": f"state/{name}.db", **(changes or {})})
    warm_up(config, cycles=1)
    return drill(sandbox, host, mode, config_path=config, interval=1.0, timeout=90)


def store_of(sandbox: Any, name: str):
    from lazarus.store import Store

    return Store(sandbox.root / "state" / f"{name}.db")


def mentions(messages: list[dict], text: str) -> list[dict]:
    return [m for m in messages if text in str(m)]


def test_killed_service_is_detected_notified_restarted_verified_resolved(healthy_sandbox):
    sb = healthy_sandbox
    others = {h.name: sb.service_pid(h.name) for h in sb.hosts if h.name != "web-2"}
    killed_pid = sb.service_pid("web-2")
    mails_before = len(sb.mail())

    result = run_drill(sb, "web-2", "kill", "loop-kill")

    incident = result.incident
    assert incident is not None, "no incident opened"
    assert incident.state == "resolved", incident.reason
    assert incident.fingerprint == "web@web-2/service_down"
    assert incident.detected_at <= incident.notified_at <= incident.closed_at
    assert incident.action_at is not None and incident.verified_at is not None
    # The notification as the sinks received it, for this incident.
    fingerprint = "service_down web@web-2"
    assert mentions(sb.mail(), fingerprint), "the SMTP sink got no mail about the incident"
    assert mentions(sb.chat(), fingerprint), "the chat capture got no post about the incident"
    # What the on-call reads: the group's alert, then its outcome, "resolved" once, each naming
    # the incident; the shell line carries the config's real path; the text part is readable.
    mails = sb.mail()[mails_before:]
    told = f"#{incident.id} service_down web@web-2"
    subjects = [m["subject"] for m in mails if told in m["subject"]]
    assert subjects == [f"[FIRING] {told}", f"[RESOLVED] {told}"], subjects
    firing, resolved = (m["text"] for m in mails if told in m["subject"])
    config = sb.config_path.with_name("loop-kill.yaml").resolve()
    assert f"lazarus ack -c {config} {incident.id}" in firing
    for fact in (
        f"{told.replace(' web', ' on web')} · critical · resolved",
        "recover run: ",
        "steps/restart: ok",
        "verify/cleared: ok",
    ):
        assert fact in resolved, (fact, resolved)  # fmt: skip
    # The restart really ran over SSH: a new process answers health again.
    assert sb.health("web-2") == 200
    assert sb.service_pid("web-2") not in (None, killed_pid)
    store = store_of(sb, "loop-kill")
    actions = [(a.action, a.ok) for a in store.actions(incident.id)]
    store.close()
    assert actions == [("ssh.restart", True), ("http.check", True), ("symptom.cleared", True)]
    # The other hosts were left alone.
    assert {h: sb.service_pid(h) for h in others} == others


def test_hung_service_is_restarted(healthy_sandbox):
    result = run_drill(healthy_sandbox, "web-1", "hang", "loop-hang")
    assert result.incident is not None
    assert (result.incident.symptom, result.incident.state) == ("service_unhealthy", "resolved")
    assert healthy_sandbox.health("web-1") == 200


def test_auth_failure_escalates_without_retrying(healthy_sandbox, tmp_path: Path):
    key = tmp_path / "stranger"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    result = run_drill(
        healthy_sandbox, "web-1", "kill", "loop-auth", {"inventory.ssh.key": str(key)}
    )
    incident = result.incident
    assert incident is not None and incident.state == "escalated"
    assert "AuthFailed" in incident.reason
    store = store_of(healthy_sandbox, "loop-auth")
    restarts = [a for a in store.actions(incident.id) if a.action == "ssh.restart"]
    store.close()
    assert len(restarts) == 1 and not restarts[0].ok


def test_host_key_mismatch_is_refused_and_escalated(healthy_sandbox, tmp_path: Path):
    key = tmp_path / "impostor"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    impostor = key.with_suffix(".pub").read_text().split()[:2]
    known = tmp_path / "known_hosts"
    known.write_text(
        "".join(f"{_known_host(h)} {' '.join(impostor)}\n" for h in healthy_sandbox.hosts)
    )
    result = run_drill(
        healthy_sandbox, "web-1", "kill", "loop-hostkey", {"inventory.ssh.known_hosts": str(known)}
    )
    incident = result.incident
    assert incident is not None and incident.state == "escalated"
    assert "HostKeyMismatch" in incident.reason


def test_command_timeout_is_retried_then_escalated(healthy_sandbox):
    config_services = _services_with_control(
        healthy_sandbox, {"kind": "command", "restart": "sleep 30"}
    )
    result = run_drill(
        healthy_sandbox,
        "web-2",
        "kill",
        "loop-timeout",
        {
            "inventory.ssh.command_timeout": "1s",
            "inventory.services": config_services,
        },
    )
    incident = result.incident
    assert incident is not None and incident.state == "escalated"
    assert "CommandTimeout" in incident.reason


def test_dead_notification_endpoint_never_stops_remediation(healthy_sandbox):
    sb = healthy_sandbox
    mail_url = next(u for u in _receiver_urls(sb) if u.startswith("mailto"))
    result = run_drill(
        sb,
        "web-3",
        "kill",
        "loop-deadchat",
        {
            "notify.receivers": [
                {"name": "oncall", "urls": [mail_url]},
                {"name": "chat", "urls": ["json://127.0.0.1:9/dead"]},
            ],
            "notify.route": {
                "receiver": "oncall",
                "group_wait": "0s",
                "routes": [
                    {"matchers": ['severity="critical"'], "receiver": "chat", "continue": True},
                    {"matchers": ['severity="critical"'], "receiver": "oncall"},
                ],
            },
            "notify.retries": 2,
            "notify.retry_delay": "100ms",
        },
    )
    incident = result.incident
    assert incident is not None and incident.state == "resolved"

    def chat_tries() -> tuple[list[Any], list[Any]]:
        store = store_of(sb, "loop-deadchat")
        try:
            deliveries = store.deliveries(incident.id)
        finally:
            store.close()
        return deliveries, [d for d in deliveries if d.receiver == "chat" and d.event == "opened"]

    # The message stays in the outbox after the incident resolved: the watch goes on trying it
    # (a quick recovery may end before its third round), bounded.
    from flows.loop import watch_until

    deadline = time.monotonic() + 120
    watch_until(
        str(sb.config_path.with_name("loop-deadchat.yaml")),
        interval=1.0,
        until=lambda _: len(chat_tries()[1]) >= 9 or time.monotonic() > deadline,
    )
    deliveries, chat = chat_tries()
    assert [d.attempt for d in chat][:3] == [1, 2, 3] and not any(d.ok for d in chat)
    assert all(d.error for d in chat)
    assert len(chat) % 3 == 0  # each flush that tries makes 1 + notify.retries tries
    rounds = [d.at - chat[0].at for d in chat[::3]]  # and waits as long again as it has waited
    assert len(rounds) >= 3
    assert all(later >= 2 * before - 0.01 for before, later in itertools.pairwise(rounds[1:]))
    assert any(d.ok for d in deliveries if d.receiver == "oncall")


def test_fire_drill_flow_reports_the_times(healthy_sandbox, tmp_path: Path):
    from flows.drill import fire_drill

    # the sandbox as the flow is given it, but watching every second rather than every five
    site = stand_in(healthy_sandbox, tmp_path / "sandbox", {"watch.interval": "1s"})
    report = fire_drill(str(site), "web-2", "kill")
    assert report["state"] == "resolved"
    assert 0 < report["time_to_detect"] < report["time_to_recover"]
    assert healthy_sandbox.health("web-2") == 200


def _known_host(host: Any) -> str:
    return host.address if host.ssh_port == 22 else f"[{host.address}]:{host.ssh_port}"


def _services_with_control(sandbox: Any, control: dict[str, str]) -> list[dict]:
    import yaml

    services = yaml.safe_load(sandbox.config_path.read_text())["inventory"]["services"]
    return [{**s, "control": control} for s in services]


def _receiver_urls(sandbox: Any) -> list[str]:
    import yaml

    receivers = yaml.safe_load(sandbox.config_path.read_text())["notify"]["receivers"]
    return [u for r in receivers for u in r["urls"]]
