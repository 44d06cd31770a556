"""The Lazarus store on a real PostgreSQL 15: the same code as SQLite, claims that hold across
connections, a lost connection that rolls back whole, and `lazarus state migrate`."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import yaml

from lazarus.cli import main
from lazarus.db import StoreUnavailable
from lazarus.model import Anomaly, IncidentState
from lazarus.store import Store

pytestmark = pytest.mark.e2e

# The unit tests of the store and of the modules that keep their tables in it.
STORE_USERS = [
    "tests/unit/test_store.py",
    "tests/unit/test_incidents.py",
    "tests/unit/test_intake.py",
    "tests/unit/test_notify_dispatch.py",
    "tests/unit/test_oncall_messages.py",
    "tests/unit/test_links.py",
    "tests/unit/test_playbooks.py",
    "tests/unit/test_cycles.py",
    "tests/unit/test_db_checks.py",
    "tests/unit/test_journal_read.py",
]


@pytest.fixture
def pg_url(postgres: Any) -> Iterator[str]:
    """A fresh database on the session's PostgreSQL server, dropped afterwards."""
    name = f"lazarus_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(postgres.dsn(), autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    yield postgres.dsn(name)
    with psycopg.connect(postgres.dsn(), autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def anomaly(host: str = "web-1", symptom: str = "service_down") -> Anomaly:
    return Anomaly(host, "web", symptom, "critical", f"{symptom} on {host}", 1_800_000_000.0)


def test_the_store_users_pass_their_own_tests_on_postgresql(postgres: Any) -> None:
    env = {**os.environ, "LAZARUS_TEST_STORE_URL": postgres.dsn()}
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *STORE_USERS],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stdout[-3000:]


def test_two_workers_claiming_one_incident_have_exactly_one_winner(pg_url: str) -> None:
    workers = [Store(pg_url), Store(pg_url)]  # two connections, as two machines would hold
    incident, _ = workers[0].open_incident(anomaly())
    assert workers[1].open_incident(anomaly()) == (incident, False)
    wins: list[int] = []
    start = threading.Barrier(16)

    def claim(i: int) -> None:
        start.wait()
        if workers[i % 2].claim(incident.id) is not None:
            wins.append(i)

    threads = [threading.Thread(target=claim, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(wins) == 1
    assert workers[1].get(incident.id).state is IncidentState.REMEDIATING
    for w in workers:
        w.close()


def test_a_lost_connection_rolls_back_whole_and_the_store_comes_back(
    pg_url: str, postgres: Any, caplog: pytest.LogCaptureFixture
) -> None:
    store = Store(pg_url)
    store.save_streaks({"probe:a": 1})
    database = pg_url.rsplit("/", 1)[1]
    with pytest.raises(StoreUnavailable, match="rolled back"), store.transaction() as db:
        db.execute("UPDATE streaks SET count = 5 WHERE key = ?", ("probe:a",))
        db.execute("INSERT INTO streaks (key, count) VALUES (?, ?)", ("probe:b", 1))
        with psycopg.connect(postgres.dsn(), autocommit=True) as admin:
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = %s AND pid <> pg_backend_pid()",
                (database,),
            )
        db.execute("INSERT INTO streaks (key, count) VALUES (?, ?)", ("probe:c", 1))
    assert "connection lost" in caplog.text
    assert store.streaks() == {"probe:a": 1}  # nothing of the cut transaction, nothing twice
    store.save_streaks({"probe:a": 2})  # the retried cycle writes as usual
    assert store.streaks() == {"probe:a": 2}
    store.close()


def test_state_migrate_moves_a_sqlite_store_to_postgresql(
    pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    from lazarus.notify.silences import add_silence
    from lazarus.notify.state import NotifyState

    sqlite = Store(tmp_path / "state" / "lazarus.db")
    first, _ = sqlite.open_incident(anomaly("web-1"))
    second, _ = sqlite.open_incident(anomaly("web-2"))
    sqlite.transition(first.id, IncidentState.RESOLVED, reason="healed")
    sqlite.record_action(second.id, "ssh.restart", "web-2", "automation", True)
    add_silence(
        NotifyState(sqlite),
        ['host="web-3"'],
        starts_at=0.0,
        ends_at=4e9,
        comment="maintenance",
        created_by="ops",
    )
    sqlite.close()
    monkeypatch.setenv("LAZARUS_TEST_STATE_URL", pg_url)
    config = tmp_path / "lazarus.yaml"
    config.write_text(yaml.safe_dump({
        "inventory": {"ssh": {"key": "k"}, "hosts": [{"name": "web-1", "address": "10.0.0.1"}]},
        "state": {"path": "state/lazarus.db", "url": "env:LAZARUS_TEST_STATE_URL"},
    }))  # fmt: skip

    assert main(["state", "migrate", "-c", str(config)]) == 0
    assert "incidents" in capsys.readouterr().out
    moved = Store(pg_url)
    assert [(i.id, i.state) for i in moved.recent()] == [
        (second.id, IncidentState.OPEN),
        (first.id, IncidentState.RESOLVED),
    ]
    assert [a.action for a in moved.actions(second.id)] == ["ssh.restart"]
    with moved.transaction() as db:
        assert db.execute("SELECT matchers FROM notify_silences").fetchall()[0][0] == (
            '["host=\\"web-3\\""]'
        )
    third, created = moved.open_incident(anomaly("web-3"))
    assert created and third.id > second.id  # ids carry on after the copied ones
    moved.close()
    # A second move would mix two histories: refused, nothing written.
    assert main(["state", "migrate", "-c", str(config)]) == 1
    assert "already holds 3 incident(s)" in capsys.readouterr().err


def _terminate(postgres: Any, database: str) -> None:
    """PostgreSQL drops every connection to ``database``, as when it restarts."""
    with psycopg.connect(postgres.dsn(), autocommit=True) as admin:
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = %s AND pid <> pg_backend_pid()",
            (database,),
        )


def test_postgresql_going_away_mid_cycle_is_logged_and_the_loop_runs_it_again(
    pg_url: str,
    postgres: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    import flows.loop as loop

    monkeypatch.setenv("LAZARUS_TEST_STATE_URL", pg_url)
    config = tmp_path / "lazarus.yaml"
    config.write_text(yaml.safe_dump({
        "inventory": {"ssh": {"key": "k"}, "hosts": [{"name": "web-1", "address": "10.0.0.1"}]},
        "state": {"url": "env:LAZARUS_TEST_STATE_URL"},
    }))  # fmt: skip
    ran: list[int] = []

    def cycle(config: Any, config_path: str, number: int, *rest: Any) -> dict[str, int]:
        """A cycle's writes; PostgreSQL goes away in the middle of the first one."""
        ran.append(number)
        store = Store(pg_url)
        try:
            with store.transaction() as db:
                db.execute("INSERT INTO streaks (key, count) VALUES (?, 1)", (f"cycle-{number}",))
                if len(ran) == 1:
                    _terminate(postgres, pg_url.rsplit("/", 1)[1])
                db.execute("INSERT INTO last_seen (fingerprint, at) VALUES (?, ?)", ("f", 1.0))
        finally:
            store.close()
        return {"cycle": number, "opened": 0, "closed": 0, "escalated": 0}

    monkeypatch.setattr(loop, "cycle", cycle)
    said = [logging.getLogger(name) for name in ("flows.loop", "lazarus.db")]
    for logger in said:  # Prefect's logging set-up may have taken caplog's handler off the root
        logger.addHandler(caplog.handler)
    try:
        report = loop.run_cycles(str(config), until=lambda r: bool(r.cycles), interval=0.5)
    finally:
        for logger in said:
            logger.removeHandler(caplog.handler)

    assert "the cycle failed" in caplog.text and "connection lost" in caplog.text
    assert len(ran) == 2 and report.cycles == ran[1:]  # the next tick ran it again, once
    assert report.failed == 1
    store = Store(pg_url)
    assert store.streaks() == {f"cycle-{ran[1]}": 1}  # nothing of the cut one, nothing twice
    assert store.last_seen("f") == 1.0
    store.close()
