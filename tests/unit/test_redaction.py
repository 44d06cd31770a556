"""Secrets are redacted everywhere: a secret planted in every kind of notification URL and in
every config reference never shows in stored errors, command output, logs or the store file."""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

import pytest
import yaml

from lazarus.cli import main
from lazarus.config import load_config
from lazarus.model import Anomaly
from lazarus.notify.send import attempt
from lazarus.notify.state import Alert, Notification, NotifyState
from lazarus.store import Store

SECRET = "Zq7SeCrEt4242"
# every one points at a closed loopback port, so each send fails and its error is stored
URLS = {
    "JSON_URL": f"json://127.0.0.1:9/hooks/{SECRET}",
    "CHAT_URL": f"mmost://127.0.0.1:9/{SECRET}",
    "NTFY_URL": f"ntfy://127.0.0.1:9/{SECRET}",
    "MAIL_URL": f"mailto://ops:{SECRET}@127.0.0.1:9?from=a@x.test&to=b@x.test",
    "SLACK_URL": f"slack://T1ABCDEF/B2ABCDEF/{SECRET}abcdefghijk",
    "SMS_URL": f"smseagle://{SECRET}@127.0.0.1:9/+15551234567",
    "FORM_URL": f"form://127.0.0.1:9/?token={SECRET}",
}


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name, url in URLS.items():
        monkeypatch.setenv(f"LAZ_T_{name}", url)
    monkeypatch.setenv("LAZ_T_DSN", f"postgresql://app:{SECRET}@127.0.0.1:9/app")
    (tmp_path / "key").write_text(f"-----BEGIN KEY-----\n{SECRET}\n")
    path = tmp_path / "lazarus.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "inventory": {
                    "ssh": {"key": f"file:{tmp_path / 'key'}"},
                    "hosts": [{"name": "web-1", "address": "127.0.0.1"}],
                    "databases": [
                        {"name": "app", "kind": "postgres", "dsn": "env:LAZ_T_DSN",
                         "snapshots": {"dir": "snaps"}}
                    ],
                },
                "notify": {
                    "receivers": [
                        {"name": "all", "urls": [f"env:LAZ_T_{n}" for n in URLS]},
                        {"name": "fallback", "urls": ["env:LAZ_T_JSON_URL"]},
                    ],
                    "fallback": "fallback",
                    "timeout": "2s",
                },
                "state": {"path": "state.db"},
            }
        )
    )  # fmt: skip
    return path


def test_a_planted_secret_shows_nowhere(
    config: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    cfg = load_config(config, check_secrets=True)
    store = Store(tmp_path / "state.db")
    incident, _ = store.open_incident(
        Anomaly("web-1", "", "service_down", "critical", "web-1 is down", 0.0, {"host": "web-1"})
    )
    state = NotifyState(store)
    message = Notification("k", "incident", "all", "t", "b", (Alert.of(incident),))
    outcome = attempt(state, cfg.notify, message, 1.0, final=True)
    assert not outcome.ok and outcome.error
    store.close()

    assert main(["check", "-c", str(config)]) == 0
    assert main(["incidents", "-c", str(config), "--show", str(incident.id)]) == 0
    printed = capsys.readouterr()
    db = sqlite3.connect(tmp_path / "state.db")
    stored = [
        *(r[0] for r in db.execute("SELECT error FROM notify_sends")),
        *(r[0] for r in db.execute("SELECT error FROM deliveries")),
        *(r[0] for r in db.execute("SELECT notification FROM notify_undelivered")),
    ]
    db.close()
    assert any("127.0.0.1" in e for e in stored)  # the errors say where, not the secret
    places = {
        "outcome": outcome.error + repr(outcome.per_url),
        "stored errors": "\n".join(stored),
        "stdout": printed.out,
        "stderr": printed.err,
        "logs": "\n".join(r.getMessage() for r in caplog.records),
        "store file": (tmp_path / "state.db").read_bytes().decode("utf-8", "replace"),
    }
    leaks = {where: text for where, text in places.items() if SECRET in text}
    assert leaks == {}
