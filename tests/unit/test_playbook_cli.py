"""`lazarus playbook ...` and `lazarus check` with a playbooks folder, through the real parser."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from lazarus.cli import main

ROOT = Path(__file__).parents[2]
BAD = ROOT / "tests" / "fixtures" / "playbooks" / "bad"
CONFIG = """inventory:
  ssh: {key: keys/id}
  hosts: [{name: web-1, address: 127.0.0.1}]
  services:
    - {name: api, probe: {http: "http://{address}:8080/health"}, control: {kind: supervisor}}
playbooks: {dir: books}
"""


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "lazarus.yaml"
    path.write_text(CONFIG)
    shutil.copytree(ROOT / "playbooks", tmp_path / "books")
    return path


def test_check_shipped_and_bad(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["playbook", "check", str(ROOT / "playbooks")]) == 0
    assert "ok (10 playbooks)" in capsys.readouterr().out
    assert main(["playbook", "check", str(BAD)]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == sum(len(p.read_text().splitlines()) for p in BAD.glob("*.err"))


def test_plan_prints_argv(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    incident = '{"host": "web-1", "service": "api", "symptom": "service_down"}'
    code = main(
        [
            "playbook",
            "plan",
            "--dir",
            str(config.parent / "books"),
            "--config",
            str(config),
            "--incident-json",
            incident,
        ]
    )
    out = capsys.readouterr().out
    assert code == 0 and out.splitlines()[:2] == [
        "playbook service-down (approval no)",
        '  steps/restart: ssh.restart on web-1: ["supervisorctl", "restart", "api"]',
    ]


def test_lazarus_check_validates_the_playbooks_dir(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["check", "--no-secrets", "-c", str(config)]) == 0
    shutil.copy(BAD / "duplicate_id.yaml", config.parent / "books")
    assert main(["check", "--no-secrets", "-c", str(config)]) == 2
    assert "duplicate step id 'a'" in capsys.readouterr().err


def test_reset_breaker(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["playbook", "reset-breaker", "-c", str(config), "api@web-1", "service-down"]) == 0
    assert "closed (0 restarts forgotten)" in capsys.readouterr().out


def test_lazarus_check_names_the_line_of_a_label_no_symptom_sets(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    shutil.copy(BAD / "label_never_set.yaml", config.parent / "books")
    assert main(["check", "--no-secrets", "-c", str(config)]) == 2
    err = capsys.readouterr().err
    assert "label_never_set.yaml:7: steps[0].with: names incident.labels.path" in err
    assert "disk_full sets host, mount" in err


def test_plan_of_bad_release_rolls_back_the_inventory_folder(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config.write_text(config.read_text().replace(
        "control: {kind: supervisor}}",
        "control: {kind: supervisor}, releases: {dir: /srv/api/releases}}",
    ))  # fmt: skip
    incident = '{"host": "web-1", "service": "api", "symptom": "service_unhealthy"}'
    argv = ["playbook", "plan", "--dir", str(config.parent / "books"), "--config", str(config)]
    assert main([*argv, "--incident-json", incident, "--cause", "bad_release"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "playbook bad-release (approval no)"
    assert out[1].startswith("  steps/rollback: release.rollback on web-1: ")
    assert out[1].endswith('"/srv/api/releases", "current"]')
