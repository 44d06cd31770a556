"""The Prefect side of notify: dispatch from a flow, retries as task retries, the last try falls
back, a person's step goes out through ``notify``/``settle``; the signed ack and silence links
against `lazarus serve`'s endpoint; an ack from the shell or a link is a Prefect event."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
import yaml

from lazarus.config import load_config
from lazarus.errors import LazarusError
from lazarus.model import Anomaly
from lazarus.notify.state import NotifyState
from lazarus.sandbox.sinks import SinkProcess
from lazarus.store import Store

pytestmark = pytest.mark.e2e


def test_a_flow_dispatches_groups_retries_and_falls_back(
    prefect_harness: None, sinks: SinkProcess, tmp_path: Path
):
    from prefect import flow

    from flows.acknowledge import acknowledge
    from tasks.notify import dispatch, notify, settle

    mark = f"T-{uuid.uuid4().hex[:10]}"
    q = sinks.http_port
    path = tmp_path / "lazarus.yaml"
    path.write_text(yaml.safe_dump({
        "inventory": {"ssh": {"key": "id"}, "hosts": [{"name": "web-1", "address": "127.0.0.1"}]},
        "notify": {
            "receivers": [
                {"name": "chat", "urls": [f"json://127.0.0.1:{q}/{mark}"]},
                {"name": "mail", "urls": [
                    f"mailto://127.0.0.1:{sinks.smtp_port}?from=l@x.test&to=o@x.test"]},
            ],
            "route": {"receiver": "chat", "group_by": ["host"], "group_wait": "0s"},
            "fallback": "mail",
            "retries": 1,
            "retry_delay": "100ms",
        },
    }))  # fmt: skip
    config = load_config(path)
    store = Store(config.path(config.state.path))
    for service in ("api", "db"):
        store.open_incident(
            Anomaly("web-1", service, "service_down", "critical", f"{mark} {service}", 1.0)
        )
    incident = store.active()[0]

    @flow
    def cycle() -> tuple[int, int]:
        first = settle(dispatch(config))
        again = dispatch(config)  # a second run at once: nothing is due twice
        return first, len(again) + settle(notify(config, incident, "resolved"))

    sinks.fail_http(503)
    try:
        assert cycle() == (0, 0)
    finally:
        sinks.heal_http()
    tried = [m for m in sinks.messages("http") if m["path"] == f"/{mark}"]
    assert len(tried) == 4 and {m["status"] for m in tried} == {503}  # 2 messages x 2 tries
    mails = [m for m in sinks.messages("mail") if mark in m["text"]]
    assert sorted(m["subject"] for m in mails) == sorted([
        "[FIRING:2] 2 incidents on host web-1",
        f"[CRITICAL] #{incident.id} service_down api@web-1 — resolved",
    ])  # fmt: skip
    deliveries = store.deliveries(incident.id)
    assert [(d.event, d.receiver, d.ok) for d in deliveries] == [
        ("opened", "chat", False), ("opened", "chat", False), ("opened", "mail", True),
        ("resolved", "chat", False), ("resolved", "chat", False), ("resolved", "mail", True),
    ]  # fmt: skip
    assert store.get(incident.id).notified_at is not None
    assert len(NotifyState(store).sends("mail")) == 2
    store.close()
    # the acknowledge flow is the UI's form; an incident that is not firing is refused
    assert acknowledge(incident.id, "ana", config_path=str(path)).endswith("by ana")
    with pytest.raises(LazarusError, match="not firing"):
        acknowledge(incident.id + 99, "x", config_path=str(path))


def test_signed_ack_and_silence_links_work_through_serve_and_refuse_the_rest(
    prefect_harness: None, sinks: SinkProcess, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """The message's links against `lazarus serve`'s endpoint (``flows.serve.start_web``): the
    GET only asks, the POST acts once; changed, expired and reused links are refused; the ack
    reaches the audit, the team and Prefect's events; other routes still need the token."""
    import re
    import time

    import httpx

    from flows.serve import start_web
    from lazarus.notify.dispatch import flush, record
    from lazarus.notify.links import LinkSigner
    from lazarus.notify.send import deliver_with_retries
    from lazarus.notify.silences import list_silences
    from lazarus.notify.state import Alert
    from lazarus.sandbox.sinks import free_port
    from lazarus.secrets import Secret
    from tasks.notify import reach_for

    mark, port = f"L-{uuid.uuid4().hex[:10]}", free_port()
    monkeypatch.setenv("LAZARUS_TEST_SERVE_TOKEN", "serve-token")
    monkeypatch.setenv("LAZARUS_TEST_LINK_KEY", "link-key-" + mark)
    path = tmp_path / "lazarus.yaml"
    path.write_text(yaml.safe_dump({
        "inventory": {"ssh": {"key": "id"}, "hosts": [{"name": "web-1", "address": "127.0.0.1"}]},
        "notify": {"receivers": [{"name": "chat",
                                  "urls": [f"json://127.0.0.1:{sinks.http_port}/{mark}"]}],
                   "route": {"receiver": "chat", "group_wait": "0s"}},
        "server": {"listen": f"127.0.0.1:{port}", "token": "env:LAZARUS_TEST_SERVE_TOKEN",
                   "links": {"key": "env:LAZARUS_TEST_LINK_KEY", "silence": "30m"}},
    }))  # fmt: skip
    config = load_config(path)
    store = Store(config.path(config.state.path))
    state = NotifyState(store)
    incident, _ = store.open_incident(
        Anomaly("web-1", "api", "service_down", "critical", f"{mark} refused", time.time())
    )
    now = time.time()
    record(state, config.notify, [Alert.of(incident)], now)
    for n in flush(state, config.notify, now, reach_for(config)):
        assert deliver_with_retries(state, config.notify, n)
    (posted,) = [m["json"]["message"] for m in sinks.messages("http") if m["path"] == f"/{mark}"]
    ack, silence = (re.search(rf"<(http://127\.0\.0\.1:{port}/act/{a}\?[^>]+)>", posted)[1]
                    for a in ("ack", "silence"))  # fmt: skip
    web = start_web(path)
    assert web is not None
    try:
        with httpx.Client(timeout=10) as http:
            page = http.get(ack)  # what a mail scanner does: it acts on nothing
            assert page.status_code == 200 and "text/html" in page.headers["content-type"]
            assert f"Acknowledge #{incident.id}?" in page.text and 'method="post"' in page.text
            assert store.actions(incident.id) == []
            changed = ack.replace(f"incident={incident.id}", f"incident={incident.id + 1}")
            forged = ack[:-1] + ("0" if ack[-1] != "0" else "1")
            old = LinkSigner(f"http://127.0.0.1:{port}", Secret("link-key-" + mark), -60)
            expired = old.url("ack", incident.id, time.time())
            for bad, says in ((changed, "not valid"), (forged, "not valid"), (expired, "expired")):
                for answer in (http.get(bad), http.post(bad, data={"by": "eve"})):
                    assert answer.status_code == 403 and says in answer.json()["error"], bad
            assert http.post(ack, data={"by": ""}).status_code == 400  # a name is required
            done = http.post(ack, data={"by": "ana", "comment": "on it"})
            assert done.status_code == 200 and "acknowledged by ana" in done.text
            again = http.post(ack, data={"by": "ana"})
            assert again.status_code == 409 and "used already" in again.json()["error"]
            muted = http.post(silence, data={"by": "bob"})
            assert muted.status_code == 200, muted.text
            intake = http.post(f"http://127.0.0.1:{port}/alerts/alertmanager", json={})
            assert intake.status_code == 401  # every other route keeps its bearer token
    finally:
        web.stop()
    assert [(a.action, a.actor, a.detail) for a in store.actions(incident.id)] == [
        ("oncall.ack", "ana", "on it")
    ]
    told = [m["json"] for m in sinks.messages("http") if m["path"] == f"/{mark}"][1:]
    assert len(told) == 1 and "acknowledged by ana: on it" in told[0]["message"]
    (silenced,) = list_silences(state, time.time())
    assert silenced.matchers == ('host="web-1"', 'service="api"', 'symptom="service_down"')
    assert silenced.created_by == "bob" and 1790 < silenced.ends_at - silenced.starts_at <= 1800
    store.close()
    assert _acknowledged(incident.id, "ana")


def _acknowledged(incident_id: int, person: str, wait: float = 30.0) -> bool:
    """Whether the Prefect server recorded ``person``'s ack of ``incident_id`` (other tests'
    stores number their incidents from 1 too: the person tells them apart)."""
    import time

    from prefect import get_client
    from prefect.events.filters import EventFilter, EventNameFilter

    deadline = time.monotonic() + wait
    while True:
        with get_client(sync_client=True) as client:
            page = client.read_events(
                EventFilter(event=EventNameFilter(name=["lazarus.incident.acknowledged"])), limit=50
            )
        if any(
            e.resource.get("lazarus.incident.id") == str(incident_id)
            and e.payload.get("by") == person
            for e in page.events
        ):
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.5)


def test_an_ack_from_the_shell_is_an_event_on_the_prefect_server(
    prefect_harness: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
):
    """`lazarus ack` with PREFECT_API_URL set: the audit and the ``acknowledged`` event."""
    import time

    from prefect.settings import PREFECT_API_URL

    from lazarus.cli import main
    from lazarus.notify.dispatch import record
    from lazarus.notify.state import Alert

    path = tmp_path / "lazarus.yaml"
    path.write_text(yaml.safe_dump({
        "inventory": {"ssh": {"key": "id"}, "hosts": [{"name": "web-1", "address": "127.0.0.1"}]},
        "notify": {"receivers": [{"name": "chat", "urls": ["json://127.0.0.1:9/none"]}],
                   "retries": 0},
    }))  # fmt: skip
    config = load_config(path)
    store = Store(config.path(config.state.path))
    incident, _ = store.open_incident(
        Anomaly("web-1", "db", "service_down", "critical", "refused", time.time())
    )
    record(NotifyState(store), config.notify, [Alert.of(incident)], time.time())
    monkeypatch.setenv("PREFECT_API_URL", PREFECT_API_URL.value())
    assert main(["ack", "-c", str(path), str(incident.id), "--by", "cli-ana"]) == 0
    assert f"acknowledged incident #{incident.id}" in capsys.readouterr().out
    assert [(a.action, a.actor) for a in store.actions(incident.id)] == [("oncall.ack", "cli-ana")]
    store.close()
    assert _acknowledged(incident.id, "cli-ana")
