"""Grouping, dedup, resolved, repeat, inhibition, silences, windows and escalation: the state
machine of lazarus.notify.dispatch on a real SQLite store, with time driven by the test."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from lazarus.config import Notify
from lazarus.errors import LazarusError
from lazarus.notify import dispatch
from lazarus.notify.dispatch import record
from lazarus.notify.escalation import AckInput, acknowledge
from lazarus.notify.silences import add_silence, expire_silence, list_silences, remediation_paused
from lazarus.notify.state import Alert, Notification, NotifyState, delivered
from lazarus.store import Store

T0 = datetime(2026, 11, 29, 1, 0, tzinfo=UTC).timestamp()  # a Sunday, 01:00 UTC


def notify(**extra: Any) -> Notify:
    route = {"receiver": "ops", "group_by": ["host"], **extra.pop("route", {})}
    return Notify.model_validate(
        {
            "receivers": [
                {"name": "ops", "urls": ["json://127.0.0.1:9/ops"]},
                {"name": "pager", "urls": ["json://127.0.0.1:9/pager"]},
                {"name": "boss", "urls": ["json://127.0.0.1:9/boss"]},
            ],
            "route": route,
            **extra,
        }
    )


def flush(state: NotifyState, cfg: Notify, now: float) -> list[Notification]:
    """What is due at ``now``, delivered as the watch's deliver tasks would (out of the outbox);
    a test of a failed send calls ``attempt`` on it afterwards."""
    due = dispatch.flush(state, cfg, now)
    for notification in due:
        delivered(state, notification)
    return due


def alert(host: str, service: str = "", symptom: str = "service_down", **kw: Any) -> Alert:
    target = f"{service}@{host}" if service else host
    labels = {"host": host, "service": service, "symptom": symptom, "severity": "critical"}
    kw.setdefault("incident_id", abs(hash(target + symptom)) % 10**6)
    return Alert(f"{target}/{symptom}", labels, f"{target} {symptom}", T0, **kw)


def stored(state: NotifyState, host: str, service: str) -> int:
    """A real incident's id: deliveries reference incidents (PostgreSQL enforces the key)."""
    from lazarus.model import Anomaly

    incident, _ = state.store.open_incident(
        Anomaly(host, service, "service_down", "critical", "down", T0)
    )
    return incident.id


@pytest.fixture
def state(tmp_path: Path) -> Iterator[NotifyState]:
    store = Store(tmp_path / "lazarus.db")
    yield NotifyState(store)
    store.close()


def test_a_storm_of_100_alerts_over_10_hosts_is_one_message_per_host(state: NotifyState):
    cfg = notify()
    storm = [alert(f"web-{h}", f"svc-{s}") for h in range(10) for s in range(10)]
    record(state, cfg, storm, T0)
    record(state, cfg, storm, T0 + 5)  # the next watch run sees the same: dedup by fingerprint
    assert flush(state, cfg, T0 + 29) == []  # group_wait 30s (Alertmanager's default)
    sent = flush(state, cfg, T0 + 30)
    assert len(sent) == 10
    assert sorted(n.labels["host"] for n in sent) == sorted(f"web-{h}" for h in range(10))
    assert all(len(n.firing) == 10 and n.title.startswith("[FIRING:10]") for n in sent)
    assert sum(n.body.count("service_down on ") for n in sent) == 100
    assert flush(state, cfg, T0 + 31) == []  # claimed once


def test_a_new_alert_waits_for_group_interval_and_repeat_for_repeat_interval(state: NotifyState):
    cfg = notify(route={"group_wait": "10s", "group_interval": "1m", "repeat_interval": "1h"})
    record(state, cfg, [alert("web-1", "api")], T0)
    assert [len(n.firing) for n in flush(state, cfg, T0 + 10)] == [1]
    record(state, cfg, [alert("web-1", "api"), alert("web-1", "db")], T0 + 20)
    assert flush(state, cfg, T0 + 69) == []
    (changed,) = flush(state, cfg, T0 + 70)
    assert changed.title.startswith("[FIRING:2]") and not changed.repeat
    assert flush(state, cfg, T0 + 70 + 3599) == []
    (again,) = flush(state, cfg, T0 + 70 + 3600)
    assert again.repeat and "still firing" in again.title and len(again.firing) == 2


def test_resolved_alerts_are_told_once_then_the_group_ends(state: NotifyState):
    cfg = notify(route={"group_wait": "0s", "group_interval": "1m"})
    record(state, cfg, [alert("web-1", "api"), alert("web-1", "db")], T0)
    assert len(flush(state, cfg, T0)) == 1
    record(state, cfg, [alert("web-1", "db")], T0 + 30, complete=True)  # api recovered
    assert flush(state, cfg, T0 + 59) == []
    (n,) = flush(state, cfg, T0 + 60)
    assert [a.fingerprint for a in n.resolved] == ["api@web-1/service_down"]
    assert [a.fingerprint for a in n.firing] == ["db@web-1/service_down"]
    assert n.title.startswith("[FIRING:1 RESOLVED:1]")
    record(state, cfg, [], T0 + 90, complete=True)
    (last,) = flush(state, cfg, T0 + 120)
    assert last.title.startswith("[RESOLVED]") and not last.firing
    assert flush(state, cfg, T0 + 10_000) == []  # nothing left to repeat


def test_an_alert_resolved_inside_group_wait_is_told_once_as_opened_and_recovered(
    state: NotifyState,
):
    cfg = notify()
    record(state, cfg, [alert("web-1", "api")], T0)
    record(state, cfg, [], T0 + 10, complete=True)
    assert flush(state, cfg, T0 + 29) == []  # still inside group_wait
    (told,) = flush(state, cfg, T0 + 30)
    assert told.title.startswith("[OPENED AND RECOVERED] #") and "api@web-1" in told.title
    assert "opened and recovered" in told.body and "(after 10s)" in told.body
    assert not told.firing and len(told.resolved) == 1
    assert flush(state, cfg, T0 + 3600) == []  # once


def test_a_silenced_alert_that_resolves_unheard_stays_quiet(state: NotifyState):
    cfg = notify()
    add_silence(state, ['host="web-1"'], starts_at=T0, ends_at=T0 + 3600, comment="x",
                created_by="ana")  # fmt: skip
    record(state, cfg, [alert("web-1", "api")], T0)
    record(state, cfg, [], T0 + 10, complete=True)
    assert flush(state, cfg, T0 + 30) == [] and flush(state, cfg, T0 + 7200) == []


def test_continue_routes_make_one_group_per_receiver(state: NotifyState):
    cfg = notify(
        route={
            "group_wait": "0s",
            "routes": [
                {"matchers": ['severity="critical"'], "receiver": "pager", "continue": True},
                {"matchers": ['service="api"'], "receiver": "boss", "group_by": ["service"]},
            ],
        }
    )
    record(state, cfg, [alert("web-1", "api"), alert("web-2", "api")], T0)
    sent = flush(state, cfg, T0)
    assert sorted((n.receiver, len(n.firing)) for n in sent) == [
        ("boss", 2), ("pager", 1), ("pager", 1)
    ]  # fmt: skip


def test_a_host_down_inhibits_the_alerts_of_its_services(state: NotifyState):
    cfg = notify(
        route={"group_wait": "0s", "group_by": []},
        inhibit_rules=[
            {
                "source_matchers": ['symptom="host_down"'],
                "target_matchers": ['symptom="service_down"'],
                "equal": ["host"],
            }
        ],
    )
    alerts = [alert("web-1", symptom="host_down"), alert("web-1", "api"), alert("web-2", "api")]
    record(state, cfg, alerts, T0)
    (n,) = flush(state, cfg, T0)
    assert sorted(a.fingerprint for a in n.firing) == [
        "api@web-2/service_down", "web-1/host_down"
    ]  # fmt: skip


def test_a_silence_mutes_until_it_is_expired_and_reminds_before_it_ends(state: NotifyState):
    cfg = notify(route={"group_wait": "0s", "group_interval": "1m"}, silence_reminder="10m")
    silence = add_silence(
        state, ['host="web-1"'], starts_at=T0, ends_at=T0 + 3600, comment="disk swap",
        created_by="ana",
    )  # fmt: skip
    record(state, cfg, [alert("web-1", "api"), alert("web-2", "api")], T0)
    (n,) = flush(state, cfg, T0)
    assert [a.labels["host"] for a in n.firing] == ["web-2"]
    (reminder,) = flush(state, cfg, T0 + 3000)
    assert reminder.kind == "reminder" and f"#{silence.id}" in reminder.title
    assert flush(state, cfg, T0 + 3001) == []  # reminded once
    assert expire_silence(state, silence.id, T0 + 3100)
    assert not expire_silence(state, silence.id, T0 + 3101)
    assert list_silences(state, T0 + 3200) == []
    (after,) = flush(state, cfg, T0 + 3200)
    assert [a.labels["host"] for a in after.firing] == ["web-1"]


def test_a_silence_needs_a_valid_matcher(state: NotifyState):
    with pytest.raises(LazarusError):
        add_silence(state, [], starts_at=T0, ends_at=T0 + 1, comment="", created_by="x")
    with pytest.raises(LazarusError, match="matcher"):
        add_silence(state, ["host=~'("], starts_at=T0, ends_at=T0 + 1, comment="", created_by="x")


def test_a_maintenance_window_mutes_and_pauses_remediation_only_while_open(state: NotifyState):
    cfg = notify(
        route={"group_wait": "0s"},
        maintenance=[
            {"name": "sunday-db", "schedule": "30 1 * * sun", "duration": "1h",
             "matchers": ['service="db"']},
        ],
    )  # fmt: skip
    db = {"host": "web-1", "service": "db"}
    assert remediation_paused(state, cfg, db, T0 + 1799) is None
    assert "sunday-db" in (remediation_paused(state, cfg, db, T0 + 1800) or "")
    assert remediation_paused(state, cfg, {**db, "service": "api"}, T0 + 1800) is None
    assert remediation_paused(state, cfg, db, T0 + 1800 + 3600) is None
    record(state, cfg, [alert("web-1", "db")], T0 + 1800)
    assert flush(state, cfg, T0 + 1800) == []
    (n,) = flush(state, cfg, T0 + 5400)  # the window closed
    assert len(n.firing) == 1


def test_a_silence_may_pause_remediation_too(state: NotifyState):
    cfg = notify()
    add_silence(state, ['host="web-1"'], starts_at=T0, ends_at=T0 + 60, comment="upgrade",
                created_by="ana", pause_remediation=True)  # fmt: skip
    assert "upgrade" in (remediation_paused(state, cfg, {"host": "web-1"}, T0 + 1) or "")
    assert remediation_paused(state, cfg, {"host": "web-1"}, T0 + 61) is None


def test_unacknowledged_alerts_escalate_level_by_level_then_stop(state: NotifyState):
    cfg = notify(
        route={"group_wait": "0s"},
        escalation=[
            {"matchers": ['severity="critical"'], "repeat": 2, "repeat_interval": "10m",
             "levels": [{"receiver": "pager", "after": "5m"},
                        {"receiver": "boss", "after": "15m"}]},
        ],
    )  # fmt: skip
    record(state, cfg, [alert("web-1", "api")], T0)
    pages = {}
    for minute in range(0, 120):
        for n in flush(state, cfg, T0 + 60 * minute):
            if n.kind == "escalation":
                pages[minute] = n.receiver
    assert pages == {5: "pager", 15: "boss", 25: "boss", 35: "boss"}


def test_an_acknowledged_alert_stops_escalating_and_repeating(state: NotifyState):
    cfg = notify(
        route={"group_wait": "0s", "repeat_interval": "1h"},
        escalation=[{"levels": [{"receiver": "pager", "after": "5m"}]}],
    )
    number = stored(state, "web-1", "api")
    a = alert("web-1", "api", incident_id=number)
    record(state, cfg, [a], T0)
    assert [n.kind for n in flush(state, cfg, T0)] == ["group"]
    acked = acknowledge(state, number, AckInput(acknowledged_by="ana", comment="on it"), T0 + 60)
    assert acked is not None and acked.acked_by == "ana (on it)"
    assert acknowledge(state, number + 1, AckInput(acknowledged_by="ana"), T0 + 60) is None
    assert flush(state, cfg, T0 + 7200) == []  # no page, no repeat


def test_two_dispatchers_at_once_claim_each_message_once(state: NotifyState, tmp_path: Path):
    cfg = notify(route={"group_wait": "0s"})
    storm = [alert(f"web-{h}", f"svc-{s}") for h in range(10) for s in range(10)]
    other = NotifyState(Store(tmp_path / "lazarus.db"))  # a second connection: another worker
    results: list[list[Any]] = [[], []]
    start = threading.Barrier(2)

    def worker(i: int, st: NotifyState) -> None:
        start.wait(timeout=10)
        for step in range(20):
            record(st, cfg, storm, T0 + step, complete=True)
            results[i] += flush(st, cfg, T0 + step)

    threads = [threading.Thread(target=worker, args=(i, s)) for i, s in enumerate((state, other))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    other.store.close()
    sent = results[0] + results[1]
    assert sorted(n.labels["host"] for n in sent) == sorted(f"web-{h}" for h in range(10))


def test_without_send_resolved_an_alert_that_fires_again_is_news(state: NotifyState):
    cfg = notify(route={"group_wait": "0s", "group_interval": "1m"}, send_resolved=False)
    record(state, cfg, [alert("web-1", "api"), alert("web-1", "db")], T0)
    assert len(flush(state, cfg, T0)) == 1
    record(state, cfg, [alert("web-1", "db")], T0 + 10, complete=True)
    assert flush(state, cfg, T0 + 120) == []  # resolved is not told
    record(state, cfg, [alert("web-1", "api"), alert("web-1", "db")], T0 + 130, complete=True)
    (n,) = flush(state, cfg, T0 + 180)
    assert n.title.startswith("[FIRING:2]") and not n.repeat


def test_a_message_no_receiver_took_is_sent_again_at_the_next_flush(state: NotifyState):
    from lazarus.notify.deliver import Delivery
    from lazarus.notify.send import attempt

    cfg = notify(route={"group_wait": "0s"}, fallback="boss")
    up = {"ops": False, "boss": False}

    def send(receiver: str, urls: Any, title: str, body: str, **kw: Any) -> Delivery:
        return Delivery(receiver, up[receiver], (), "" if up[receiver] else "connection refused")

    record(state, cfg, [alert("web-1", "api", incident_id=stored(state, "web-1", "api"))], T0)
    [first] = dispatch.flush(state, cfg, T0)
    assert not attempt(state, cfg, first, T0, final=True, send=send)  # ops, then boss: down
    up["ops"] = True  # SMTP is back
    [again] = dispatch.flush(state, cfg, T0 + 5)  # not at repeat_interval: at the next flush
    assert (again.key, again.title, again.receiver) == (first.key, first.title, "ops")
    assert attempt(state, cfg, again, T0 + 5, final=True, send=send)
    assert dispatch.flush(state, cfg, T0 + 10) == []  # delivered: sent once, not again
    tried = [(r["receiver"], r["ok"]) for r in state.sends()]
    assert tried == [("ops", 0), ("boss", 0), ("ops", 1)]


def test_a_receiver_down_for_good_is_tried_again_with_growing_waits(state: NotifyState):
    """Each retry waits as long as the message has waited (capped): one flush a second for
    an hour would otherwise try a dead receiver 3,600 times, with an error logged each time."""
    from lazarus.notify.deliver import Delivery
    from lazarus.notify.send import attempt
    from lazarus.notify.state import RETRY_BACKOFF_CAP

    cfg = notify(route={"group_wait": "0s"})

    def send(receiver: str, urls: Any, title: str, body: str, **kw: Any) -> Delivery:
        return Delivery(receiver, False, (), "connection refused")

    record(state, cfg, [alert("web-1", "api", incident_id=stored(state, "web-1", "api"))], T0)
    tried_at = []
    for second in [*range(21), 1000, 1000 + RETRY_BACKOFF_CAP - 1, 1000 + RETRY_BACKOFF_CAP]:
        for n in dispatch.flush(state, cfg, T0 + second):
            assert not attempt(state, cfg, n, T0 + second, final=True, send=send)
            tried_at.append(second)
    assert tried_at == [0, 1, 2, 4, 8, 16, 1000, 1000 + RETRY_BACKOFF_CAP]


def test_a_message_whose_sender_died_before_sending_it_is_sent_once_its_lease_ends(
    state: NotifyState,
):
    from lazarus.notify.deliver import Delivery
    from lazarus.notify.send import attempt
    from lazarus.notify.state import lease

    cfg = notify(route={"group_wait": "0s"})
    record(state, cfg, [alert("web-1", "api", incident_id=stored(state, "web-1", "api"))], T0)
    [claimed] = dispatch.flush(state, cfg, T0)  # claimed, then the process is killed
    held = lease(cfg)
    assert dispatch.flush(state, cfg, T0 + held - 1) == []  # its sender may still be at it
    [again] = dispatch.flush(state, cfg, T0 + held)
    assert (again.key, again.title, again.receiver) == (claimed.key, claimed.title, "ops")
    assert dispatch.flush(state, cfg, T0 + held + 1) == []  # leased to this sender now

    def send(receiver: str, urls: Any, title: str, body: str, **kw: Any) -> Delivery:
        return Delivery(receiver, True, ())

    assert attempt(state, cfg, again, T0 + held + 1, final=False, send=send)
    assert dispatch.flush(state, cfg, T0 + 10 * held) == []  # delivered: never again
