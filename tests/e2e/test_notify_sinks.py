"""Grouped notifications on real SMTP and HTTP sinks: storms, inhibition, silences, fallback,
retries, rate limits, escalation and two dispatchers at once, with time driven by the test.

Each test marks its alerts with a fresh token and counts only the records that carry it.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lazarus.config import Notify
from lazarus.notify.dispatch import flush, record
from lazarus.notify.escalation import AckInput, acknowledge
from lazarus.notify.send import deliver_with_retries
from lazarus.notify.silences import add_silence
from lazarus.notify.state import Alert, NotifyState
from lazarus.sandbox.sinks import SinkProcess
from lazarus.store import Store

pytestmark = pytest.mark.e2e
T0 = 1_800_000_000.0


@pytest.fixture
def state(tmp_path: Path) -> Iterator[NotifyState]:
    store = Store(tmp_path / "lazarus.db")
    yield NotifyState(store)
    store.close()


def config(sinks: SinkProcess, **extra: Any) -> Notify:
    q = sinks.http_port
    mail = f"mailto://127.0.0.1:{sinks.smtp_port}?from=lazarus@x.test&to=oncall@x.test"
    receivers = [
        {"name": "chat", "urls": [f"json://127.0.0.1:{q}/chat"]},
        {"name": "pager", "urls": [f"json://127.0.0.1:{q}/pager"]},
        {"name": "boss", "urls": [f"ntfy://127.0.0.1:{q}/boss"]},
        {"name": "mail", "urls": [mail]},
    ]
    for r in receivers:
        r.update(extra.pop(f"{r['name']}_extra", {}))
    route = {"receiver": "chat", "group_by": ["host"], "group_wait": "0s", **extra.pop("route", {})}
    return Notify.model_validate(
        {"receivers": receivers, "route": route, "retries": 2, "retry_delay": "1s", **extra}
    )


def alert(mark: str, host: str, service: str = "", symptom: str = "service_down", **kw) -> Alert:
    target = f"{service}@{host}" if service else host
    labels = {"host": host, "service": service, "symptom": symptom, "severity": "critical"}
    return Alert(f"{target}/{symptom}", labels, f"{mark} {target} is down", T0, **kw)


def send_due(state: NotifyState, cfg: Notify, now: float, sleeps: list[float] | None = None):
    """Flush and deliver what is due at ``now`` (retry delays are recorded, not slept)."""
    sleeps = [] if sleeps is None else sleeps
    return [
        deliver_with_retries(state, cfg, n, clock=lambda: now, sleep=sleeps.append)
        for n in flush(state, cfg, now)
    ]


def got(sinks: SinkProcess, mark: str, path: str = "/chat") -> list[dict[str, Any]]:
    return [
        m for m in sinks.messages("http")
        if mark in m["body"] and m["path"] == path and m["status"] == 200
    ]  # fmt: skip


def test_a_storm_of_100_anomalies_over_10_hosts_arrives_as_10_messages(
    healthy: SinkProcess, state: NotifyState, mark: str
):
    cfg = config(healthy)
    storm = [alert(mark, f"web-{h}", f"svc-{s}") for h in range(10) for s in range(10)]
    for cycle in range(3):  # three watch runs see the same storm
        record(state, cfg, storm, T0 + cycle, complete=True)
    assert all(send_due(state, cfg, T0 + 3))
    messages = got(healthy, mark)
    assert len(messages) == 10
    assert sorted(m["json"]["title"] for m in messages) == sorted(
        f"[FIRING:10] 10 incidents on host web-{h}" for h in range(10)
    )
    for m in messages:
        host = m["json"]["title"].rsplit(" ", 1)[1]
        assert m["json"]["message"].count(f"@{host}**") == 10
    assert send_due(state, cfg, T0 + 60) == []  # nothing new within group_interval


def test_inhibition_silence_and_resolved_as_received(
    healthy: SinkProcess, state: NotifyState, mark: str
):
    cfg = config(
        healthy,
        route={"group_by": [], "group_interval": "1m"},
        inhibit_rules=[{"source_matchers": ['symptom="host_down"'],
                        "target_matchers": ['symptom="service_down"'], "equal": ["host"]}],
    )  # fmt: skip
    add_silence(state, ['host="web-3"'], starts_at=T0, ends_at=T0 + 3600, comment="rebuild",
                created_by="ana")  # fmt: skip
    alerts = [
        alert(mark, "web-1", symptom="host_down"),
        alert(mark, "web-1", "api"),  # inhibited: its host is down
        alert(mark, "web-2", "api"),
        alert(mark, "web-3", "api"),  # silenced
    ]
    record(state, cfg, alerts, T0)
    send_due(state, cfg, T0)
    (first,) = got(healthy, mark)
    assert first["json"]["title"] == "[FIRING:2] 2 incidents"
    body = first["json"]["message"]
    assert "web-1" in body and "api@web-2" in body
    assert "api@web-1" not in body and "web-3" not in body
    record(state, cfg, alerts[1:], T0 + 30, complete=True)  # the host is back, api@web-1 fires
    send_due(state, cfg, T0 + 60)
    second = got(healthy, mark)[1]
    assert second["json"]["title"] == "[FIRING:2 RESOLVED:1] 3 incidents"
    assert (
        "**Resolved:**\n\n- **host_down on web-1** · critical · resolved"
        in second["json"]["message"]
    )


def test_a_dead_receiver_is_retried_with_backoff_then_falls_back(
    healthy: SinkProcess, state: NotifyState, mark: str
):
    cfg = config(healthy, fallback="mail")
    healthy.fail_http(503)
    record(state, cfg, [alert(mark, "web-1", "api", incident_id=None)], T0)
    sleeps: list[float] = []
    (outcome,) = send_due(state, cfg, T0, sleeps)
    healthy.heal_http()
    assert outcome.ok and outcome.receiver == "mail"
    assert sleeps == [1.0, 2.0]
    tried = [m for m in healthy.messages("http") if mark in m["body"]]
    assert [m["status"] for m in tried] == [503, 503, 503]
    (mail,) = [m for m in healthy.messages("mail") if mark in m["text"]]
    assert "fallback for chat: json://127.0.0.1" in mail["text"] and "HTTP 503" in mail["text"]
    log = [(r["receiver"], r["ok"], r["error"]) for r in state.sends()]
    assert log == [("chat", 0, log[0][2])] * 3 + [("mail", 1, "")]
    assert "HTTP 503" in log[0][2]


def test_a_receiver_that_recovers_gets_the_message_on_retry(
    healthy: SinkProcess, state: NotifyState, mark: str
):
    cfg = config(healthy, fallback="mail")
    healthy.fail_http(500, times=1)
    record(state, cfg, [alert(mark, "web-1", "api")], T0)
    (outcome,) = send_due(state, cfg, T0)
    assert outcome.ok and outcome.receiver == "chat"
    assert [m["status"] for m in healthy.messages("http") if mark in m["body"]] == [500, 200]
    assert not [m for m in healthy.messages("mail") if mark in m["text"]]


def test_a_rate_limited_receiver_overflows_to_the_fallback(
    healthy: SinkProcess, state: NotifyState, mark: str
):
    cfg = config(healthy, fallback="mail", chat_extra={"rate_limit": {"max": 2, "per": "1m"}})
    record(state, cfg, [alert(mark, f"web-{h}", "api") for h in range(4)], T0)
    outcomes = send_due(state, cfg, T0)
    assert sorted(o.receiver for o in outcomes) == ["chat", "chat", "mail", "mail"]
    assert len(got(healthy, mark)) == 2
    assert len([m for m in healthy.messages("mail") if mark in m["text"]]) == 2
    record(state, cfg, [alert(mark, "web-9", "api")], T0 + 61)
    assert [o.receiver for o in send_due(state, cfg, T0 + 61)] == ["chat"]  # a new minute


def test_escalation_and_repeat_arrive_until_acknowledged(
    healthy: SinkProcess, state: NotifyState, mark: str
):
    cfg = config(
        healthy,
        route={"repeat_interval": "30m"},
        escalation=[{"levels": [{"receiver": "pager", "after": "5m"},
                                {"receiver": "boss", "after": "10m"}]}],
    )  # fmt: skip
    record(state, cfg, [alert(mark, "web-1", "api", incident_id=11)], T0)
    for minute in range(0, 31):
        send_due(state, cfg, T0 + 60 * minute)
    pages = got(healthy, mark, "/pager")
    assert len(pages) == 1 and pages[0]["json"]["title"].startswith("[ESCALATION L1]")
    assert "`lazarus ack 11`" in pages[0]["json"]["message"]  # no literal CONFIG
    boss = [m for m in healthy.messages("http") if m["path"] == "/" and mark in m["body"]]
    assert len(boss) == 1 and boss[0]["json"]["title"].startswith("[ESCALATION L2]")
    chat = got(healthy, mark)
    assert [m["json"]["title"] for m in chat] == [
        "[FIRING] #11 service_down api@web-1", "[FIRING] #11 service_down api@web-1 (still firing)"
    ]  # fmt: skip
    acknowledge(state, 11, AckInput(acknowledged_by="ana"), T0 + 31 * 60)
    for minute in range(31, 120):
        send_due(state, cfg, T0 + 60 * minute)
    assert len(got(healthy, mark)) == 2  # no more repeats once acknowledged


def test_two_dispatchers_at_once_send_no_duplicates(
    healthy: SinkProcess, tmp_path: Path, mark: str
):
    cfg = config(healthy, route={"group_interval": "10s"})
    storm = [alert(mark, f"web-{h}", f"svc-{s}") for h in range(10) for s in range(10)]
    start = threading.Barrier(2)
    errors: list[BaseException] = []

    def worker() -> None:
        store = Store(tmp_path / "lazarus.db")  # one connection per worker, one file
        try:
            state = NotifyState(store)
            start.wait(timeout=10)
            for step in range(12):  # 0..11 s: the first flush and one group_interval later
                record(state, cfg, storm[: 50 + 50 * (step >= 5)], T0 + step, complete=True)
                send_due(state, cfg, T0 + step)
        except BaseException as exc:  # reported to the test thread
            errors.append(exc)
        finally:
            store.close()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors
    titles = sorted(m["json"]["title"] for m in got(healthy, mark))
    # hosts 0-4 fire at once; hosts 5-9 join at 5 s (new groups, sent at once); hosts 0-4 are
    # unchanged afterwards: one message per group, none twice
    assert titles == sorted(f"[FIRING:10] 10 incidents on host web-{h}" for h in range(10))


def test_sms_gets_one_short_text_while_chat_gets_the_whole_group(
    healthy: SinkProcess, state: NotifyState, mark: str
):
    q = healthy.http_port
    sms_url = f"signal://127.0.0.1:{q}/+15550001111/+15550002222"
    cfg = config(healthy, chat_extra={"urls": [f"json://127.0.0.1:{q}/chat", sms_url]})
    record(state, cfg, [alert(mark, "web-1", f"svc-{s}") for s in range(12)], T0)
    (outcome,) = send_due(state, cfg, T0)
    assert outcome.ok and len(outcome.per_url) == 2
    (chat,) = got(healthy, mark)
    assert chat["json"]["message"].count("service_down on ") == 12
    (sms,) = [m for m in healthy.messages("http") if m["path"] == "/v2/send" and mark in m["body"]]
    text = sms["json"]["message"]
    assert len(text) <= 160 and text.startswith("[FIRING:12] 12 incidents on host web-1: ")
    assert "\n" not in text and "**" not in text
