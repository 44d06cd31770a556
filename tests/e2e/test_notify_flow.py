"""The Prefect side of notify: dispatch from a flow, retries as task retries, the last try falls
back, remediation outcome messages still go out through ``notify``/``settle``."""

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
        '[FIRING:2] {host="web-1"}', f"[CRITICAL] #{incident.id} service_down api@web-1 — resolved"
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
