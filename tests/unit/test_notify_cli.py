"""`lazarus silence …`, `lazarus notify test` and `lazarus ack` on a real config and store."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import yaml

from lazarus.cli import main
from lazarus.config import load_config
from lazarus.model import Anomaly
from lazarus.notify.dispatch import flush, record
from lazarus.notify.state import Alert, NotifyState
from lazarus.store import Store

CONFIG = {
    "inventory": {"ssh": {"key": "id_test"}, "hosts": [{"name": "web-1", "address": "127.0.0.1"}]},
    "notify": {
        "receivers": [
            {"name": "ops", "urls": ["json://127.0.0.1:9/ops"]},
            {"name": "pager", "urls": ["json://127.0.0.1:9/pager"]},
        ],
        "route": {
            "receiver": "ops",
            "group_by": ["host"],
            "routes": [
                {"matchers": ['severity="critical"'], "receiver": "pager", "continue": True,
                 "group_wait": "0s"},
            ],
        },
        "escalation": [{"levels": [{"receiver": "pager", "after": "5m"}]}],
        "maintenance": [{"name": "always", "schedule": "* * * * *", "duration": "2m",
                         "matchers": ['service="batch"']}],
        "retries": 0,  # nothing answers on port 9: a retry would only wait
    },
}  # fmt: skip


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "lazarus.yaml"
    path.write_text(yaml.safe_dump(CONFIG))
    return path


def test_notify_test_prints_receivers_like_amtool(config: Path, capsys: pytest.CaptureFixture):
    code = main(["notify", "test", "-c", str(config), "--label", "severity=critical", "--label",
                 "host=web-1", "--verify-receivers", "pager"])  # fmt: skip
    out = capsys.readouterr().out.splitlines()
    assert code == 0 and out[0] == "pager"
    assert out[1] == '  pager: route 0.0 group {host="web-1"} wait 0s interval 300s repeat 14400s'
    assert main(["notify", "test", "-c", str(config), "--label", "severity=info",
                 "--verify-receivers", "pager"]) == 1  # fmt: skip
    assert capsys.readouterr().out.splitlines()[0] == "ops"
    main(["notify", "test", "-c", str(config), "--label", "service=batch"])
    out = capsys.readouterr().out
    assert "muted now: maintenance window 'always'" in out
    assert "remediation paused now: maintenance window 'always'" in out


def test_silence_add_list_expire(config: Path, capsys: pytest.CaptureFixture):
    assert main(["silence", "add", "-c", str(config), "--match", "host=web-1", "--match",
                 'service=~"api|db"', "--for", "2h", "--comment", "disk swap", "--by", "ana",
                 "--pause-remediation"]) == 0  # fmt: skip
    assert capsys.readouterr().out.startswith("silence #1 until ")
    assert main(["silence", "list", "-c", str(config)]) == 0
    listed = capsys.readouterr().out
    assert 'host="web-1", service=~"api|db"' in listed and "by ana: disk swap" in listed
    assert "[pauses remediation]" in listed
    main(["notify", "test", "-c", str(config), "--label", "host=web-1", "--label", "service=api"])
    assert "remediation paused now: silence #1" in capsys.readouterr().out
    assert main(["silence", "expire", "-c", str(config), "1"]) == 0
    assert main(["silence", "expire", "-c", str(config), "1"]) == 1
    capsys.readouterr()
    main(["silence", "list", "-c", str(config)])
    assert capsys.readouterr().out.strip() == "no silences"
    assert main(["silence", "add", "-c", str(config), "--match", "host", "--comment", "x"]) == 2
    assert main(["silence", "add", "-c", str(config), "--match", "a=b", "--for", "soon",
                 "--comment", "x"]) == 2  # fmt: skip


def test_ack_stops_the_escalation(config: Path, capsys: pytest.CaptureFixture):
    cfg = load_config(config)
    store = Store(cfg.path(cfg.state.path))
    state = NotifyState(store)
    now = time.time()
    labels = {"host": "web-1", "service": "api", "symptom": "service_down", "severity": "info"}
    incident, _ = store.open_incident(Anomaly("web-1", "api", "service_down", "info", "down", now))
    record(state, cfg.notify, [Alert("api@web-1/service_down", labels, "down", now,
                                     incident_id=incident.id)], now)  # fmt: skip
    try:
        code = main(["ack", "-c", str(config), str(incident.id), "--by", "ana", "-m", "looking"])
        assert code == 0
        assert "by ana (looking)" in capsys.readouterr().out
        # the ack shows in the incident's timeline
        assert main(["incidents", "-c", str(config), "--show", str(incident.id)]) == 0
        shown = capsys.readouterr().out
        assert "acked by  ana (looking)" in shown and "acknowledged by ana" in shown
        assert main(["ack", "-c", str(config), str(incident.id + 1)]) == 1
        assert all(n.kind != "escalation" for n in flush(state, cfg.notify, now + 3600))
    finally:
        store.close()
