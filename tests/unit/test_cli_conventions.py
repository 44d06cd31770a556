"""The conventions every `lazarus` command follows: one way to name the config (-c, then
$LAZARUS_CONFIG, then ./lazarus.yaml), --json, --version, exit codes 0/1/2, and one line
instead of a traceback for a person's mistake."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from lazarus.cli import build_parser, main
from lazarus.model import Anomaly
from lazarus.store import Store

ROOT = Path(__file__).parents[2]
CONFIG = """inventory:
  ssh: {key: keys/id}
  hosts: [{name: web-1, address: 127.0.0.1}]
  services:
    - {name: api, probe: {http: "http://{address}:8080/health"}, control: {kind: supervisor}}
playbooks: {dir: books}
state: {path: state/lazarus.db}
"""


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "fleet.yaml"
    path.write_text(CONFIG)
    shutil.copytree(ROOT / "playbooks", tmp_path / "books")
    (tmp_path / "state").mkdir()
    store = Store(tmp_path / "state" / "lazarus.db")
    store.open_incident(Anomaly("web-1", "api", "service_down", "critical", "down", 100.0))
    store.close()
    return path


def _no_traceback(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert err.startswith("error: ")
    return err


def test_the_config_comes_from_the_flag_then_the_environment_then_the_folder(
    config: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(config.parent)
    monkeypatch.delenv("LAZARUS_CONFIG", raising=False)
    assert main(["incidents"]) == 2  # no ./lazarus.yaml here
    assert "lazarus.yaml" in _no_traceback(capsys)
    monkeypatch.setenv("LAZARUS_CONFIG", str(config))
    assert main(["incidents", "--json"]) == 0
    assert [i["fingerprint"] for i in json.loads(capsys.readouterr().out)] == [
        "api@web-1/service_down"
    ]
    shutil.copy(config, config.parent / "lazarus.yaml")
    monkeypatch.delenv("LAZARUS_CONFIG")
    assert main(["incidents"]) == 0
    assert main(["incidents", "-c", str(config.parent / "missing.yaml")]) == 2
    assert "missing.yaml" in _no_traceback(capsys)


def test_every_command_leaves_no_state_where_it_runs(
    config: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    for argv in (["incidents"], ["silence", "list"], ["check", "--no-secrets"]):
        assert main([*argv, "-c", str(config)]) == 0
    assert list(elsewhere.iterdir()) == []


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["ack", "-c", "{missing}", "1"], "not found"),
        (["silence", "add", "-c", "{missing}", "--match", "a=b", "--comment", "x"], "not found"),
        (["playbook", "check", "/nonexistent"], "no such folder"),
        (["playbook", "plan", "-c", "{config}", "--incident-json", "nope"], "not JSON"),
        (["recover", "-c", "{config}", "1", "--dry-run", "--playbook", "nosuch"], "nosuch"),
        (["recover", "-c", "{config}", "1", "--playbook", "nosuch"], "nosuch"),
        (["incidents", "-c", "{config}", "--show", "99"], "no incident 99"),
        (["auto-remediation", "status"], "needs a Prefect server"),
        (["watch", "-c", "{config}"], "needs a Prefect server"),
    ],
)
def test_a_mistake_is_one_line_and_exit_2(
    config: Path,
    argv: list[str],
    says: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    values = {"config": str(config), "missing": str(config.parent / "missing.yaml")}
    assert main([a.format(**values) for a in argv]) == 2
    assert says in _no_traceback(capsys)


def test_verbose_shows_the_traceback(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["-v", "playbook", "check", "/nonexistent"]) == 2
    assert "Traceback" in capsys.readouterr().err


def test_dry_run_prints_the_plan_without_a_flow_run(
    config: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PREFECT_API_URL", raising=False)  # no server: none is needed
    assert main(["recover", "-c", str(config), "1", "--dry-run", "--json"]) == 0
    plan = json.loads(capsys.readouterr().out)
    assert plan["playbook"] == "service-down"
    assert plan["steps"][0]["argv"] == ["supervisorctl", "restart", "api"]


def test_version_and_help_on_every_argument(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0 and capsys.readouterr().out.startswith("lazarus ")
    missing = []

    def walk(parser, path: str) -> None:
        for action in parser._actions:
            if action.help is None and not isinstance(action.choices, dict):
                missing.append(f"{path} {action.dest}")
            if isinstance(action.choices, dict):  # a sub-command's parsers
                for name, child in action.choices.items():
                    walk(child, f"{path} {name}")

    walk(build_parser(), "lazarus")
    assert missing == []
