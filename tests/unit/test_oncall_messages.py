"""The messages an on-call reads, as their real SMTP and chat (HTTP) sinks receive them: each
names the incident by number, says its state, what was done and where its recover run is, in
a plain-text part a person can read; outcomes come with their group, "resolved" once, and an
incident that opened and recovered between two messages still arrives, as one message."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lazarus.config import Notify
from lazarus.model import Anomaly, Incident, IncidentState
from lazarus.notify.dispatch import flush, record
from lazarus.notify.links import LinkSigner, Reach
from lazarus.notify.outcomes import record_outcome
from lazarus.notify.send import deliver_with_retries
from lazarus.notify.state import Alert, NotifyState
from lazarus.sandbox.sinks import SinkProcess
from lazarus.secrets import Secret
from lazarus.store import Store

T0 = 1_800_000_000.0
CONFIG = "/etc/lazarus/fleet.yaml"
RUN = "http://127.0.0.1:4200/runs/flow-run/5e1f"


@pytest.fixture
def state(tmp_path: Path) -> Iterator[NotifyState]:
    store = Store(tmp_path / "lazarus.db")
    yield NotifyState(store)
    store.close()


@pytest.fixture
def mark(sinks: SinkProcess) -> str:
    sinks.heal_http()
    return f"M-{uuid.uuid4().hex[:10]}"


def notify(sinks: SinkProcess) -> Notify:
    mail = f"mailto://127.0.0.1:{sinks.smtp_port}?from=lazarus@x.test&to=oncall@x.test"
    return Notify.model_validate({
        "receivers": [{"name": "oncall", "urls": [mail, f"json://127.0.0.1:{sinks.http_port}/c"]}],
        "route": {"receiver": "oncall", "group_by": ["host"], "group_wait": "30s",
                  "group_interval": "1m", "repeat_interval": "4h"},
    })  # fmt: skip


REACH = Reach(CONFIG, "", LinkSigner("http://127.0.0.1:9095", Secret("k" * 32), 3600))


def cycle(state: NotifyState, cfg: Notify, now: float) -> None:
    """What the watch does each cycle: file the active incidents, send what is due."""
    record(state, cfg, [Alert.of(i) for i in state.store.active()], now, complete=True)
    for n in flush(state, cfg, now, REACH):
        assert deliver_with_retries(state, cfg, n, clock=lambda: now, sleep=lambda _: None)


def opened(state: NotifyState, mark: str, host: str, service: str, at: float) -> Incident:
    anomaly = Anomaly(host, service, "service_down", "critical", f"{mark} probe refused", at)
    return state.store.open_incident(anomaly)[0]


def received(sinks: SinkProcess, mark: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    mails = [m for m in sinks.messages("mail") if mark in m["text"]]
    chats = [m for m in sinks.messages("http") if mark in m["body"] and m["path"] == "/c"]
    return mails, chats


def test_firing_then_escalated_and_resolved_in_one_message_resolved_told_once(
    sinks: SinkProcess, state: NotifyState, mark: str
) -> None:
    cfg = notify(sinks)
    web, api = opened(state, mark, "web-1", "web", T0), opened(state, mark, "web-1", "api", T0)
    cycle(state, cfg, T0)
    cycle(state, cfg, T0 + 30)  # group_wait over: the first message
    (mail,), (chat,) = received(sinks, mark)
    assert mail["subject"] == chat["json"]["title"] == "[FIRING:2] 2 incidents on host web-1"
    text = mail["text"]
    for fact in (
        f"#{web.id} service_down on web@web-1",
        f"#{api.id} service_down on api@web-1",
        "· critical · firing",
        "done: nothing yet",
        f"http://127.0.0.1:9095/act/ack?incident={web.id}&expires=",
        f"lazarus ack -c {CONFIG} {web.id}",
        f"lazarus incidents -c {CONFIG} --show",
    ):
        assert fact in text, fact  # fmt: skip
    assert "{all}" not in text and "group" not in text and "CONFIG" not in text
    assert f"acknowledge: <http://127.0.0.1:9095/act/ack?incident={web.id}" in chat["body"]

    # web's recovery resolves it, api's escalates; each run records what it did
    store = state.store
    for incident in (web, api):
        store.set_flow_run_url(incident.id, f"{RUN}{incident.id}")
        store.transition(incident.id, IncidentState.REMEDIATING, at=T0 + 31)
    store.transition(
        web.id, IncidentState.RESOLVED, reason="service-down: verify passed", at=T0 + 40
    )
    record_outcome(state, web.id, ["steps/restart: ok: restart web on web-1: ok"], "OOM", T0 + 40)
    store.transition(
        api.id, IncidentState.ESCALATED, reason="service-down failed at restart", at=T0 + 41
    )
    record_outcome(state, api.id, ["steps/restart: FAILED: unit not found"], "", T0 + 41)
    cycle(state, cfg, T0 + 45)  # within group_interval: held
    assert len(received(sinks, mark)[0]) == 1
    cycle(state, cfg, T0 + 90)
    for later in range(2, 60):  # an hour of cycles: nothing else happened, nothing else said
        cycle(state, cfg, T0 + 60 * later)
    mails, chats = received(sinks, mark)
    assert len(mails) == len(chats) == 2
    outcome = mails[1]
    assert outcome["subject"] == "[ESCALATED:1 RESOLVED:1] 2 incidents on host web-1"
    text = outcome["text"]
    for fact in (
        f"#{api.id} service_down on api@web-1 · critical · escalated",
        "reason: service-down failed at restart",
        "steps/restart: FAILED: unit not found",
        f"recover run: {RUN}{api.id}",
        f"lazarus ack -c {CONFIG} {api.id}",
        f"#{web.id} service_down on web@web-1 · critical · resolved",
        "steps/restart: ok: restart web on web-1: ok",
        "diagnosis: OOM",
        f"recover run: {RUN}{web.id}",
    ):
        assert fact in text, fact  # fmt: skip
    assert text.index("Escalated:") < text.index("Resolved:")
    assert f"incident={web.id}&" not in text  # no ack link for a resolved incident
    assert "<html" not in text and "<li>" not in text and "**" not in text
    resolved = [m for m in mails if f"#{web.id} service_down on web@web-1 · critical · resolved"
                in m["text"]]  # fmt: skip
    assert len(resolved) == 1


def test_an_incident_that_opened_and_recovered_inside_group_wait_arrives_once(
    sinks: SinkProcess, state: NotifyState, mark: str
) -> None:
    cfg = notify(sinks)
    blip = opened(state, mark, "web-2", "web", T0)
    cycle(state, cfg, T0)
    state.store.transition(
        blip.id, IncidentState.RESOLVED, reason="the probe answers again", at=T0 + 10
    )
    cycle(state, cfg, T0 + 10)  # gone before group_wait ended
    for later in range(3, 20):
        cycle(state, cfg, T0 + 10 * later)
    (mail,), (chat,) = received(sinks, mark)
    title = f"[OPENED AND RECOVERED] #{blip.id} service_down web@web-2"
    assert mail["subject"] == chat["json"]["title"] == title
    assert "opened and recovered" in mail["text"] and "(after 10s)" in mail["text"]
    assert "lazarus ack" not in mail["text"]  # nothing left to take
    assert f"lazarus incidents -c {CONFIG} --show {blip.id}" in mail["text"]
