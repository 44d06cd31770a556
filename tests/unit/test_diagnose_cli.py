"""`lazarus diagnose ...` through the real command line."""

from __future__ import annotations

from pathlib import Path

import pytest

from lazarus.cli import main
from lazarus.model import Anomaly
from lazarus.store import Store

CONFIG = """inventory:
  ssh: {key: k}
  hosts: [{name: web-1, address: 10.1.0.1}, {name: db-1, address: 10.1.0.2}]
  services:
    - {name: api, probe: {http: "http://{address}/"}, depends_on: [orders-db]}
    - {name: orders-db, probe: {http: "http://{address}/"}}
state: {path: state.db}
"""


def run(argv: list[str]) -> int:
    return main(argv)


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "lazarus.yaml"
    path.write_text(CONFIG)
    store = Store(tmp_path / "state.db")
    for host, service, at in (("db-1", "orders-db", 100.0), ("web-1", "api", 130.0)):
        store.open_incident(Anomaly(host, service, "service_down", "critical", "down", at))
    store.close()
    return path


def test_incident_prints_the_paragraph(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["diagnose", "incident", "-c", str(config), "2"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("Probable cause: dependency_down (orders-db), confidence 0.90")


def test_incident_reads_log_files_and_prints_markdown(
    config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log = tmp_path / "orders.log"
    log.write_text("ok\nFATAL: could not write lock file: No space left on device\n")
    assert (
        run(["diagnose", "incident", "-c", str(config), "1", "--log", str(log), "--markdown"]) == 0
    )
    out = capsys.readouterr().out
    assert "| 1 | `disk_full` | orders-db@db-1 | 0.90 |" in out


def test_unknown_incident_is_bad_input(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["diagnose", "incident", "-c", str(config), "9"]) == 2
    assert "no incident 9" in capsys.readouterr().err


def test_check_the_shipped_and_a_bad_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["diagnose", "check"]) == 0
    assert "ok (5 signatures)" in capsys.readouterr().out
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "version: 1\nsignatures:\n  - {name: a, cause: oom, pattern: '(', confidence: 1}\n"
    )
    assert run(["diagnose", "check", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {bad}:3: signatures[0].pattern: not a valid regex")
