"""Hostile config and playbook files: each is a clear error naming file, line and field, never
a traceback or a run-away, and each bound that would crash a cycle later is refused by check."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from lazarus.config import load_config
from lazarus.errors import ConfigError
from lazarus.playbooks.schema import load_playbook

GOOD = Path(__file__).parents[1] / "fixtures" / "config" / "good" / "minimal.yaml"
BASE = yaml.safe_load(GOOD.read_text())

RAW: dict[str, tuple[bytes, str]] = {
    "alias bomb": (
        b'a: &a ["x","x","x","x","x","x","x","x","x"]\n'
        + b"".join(
            f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 9)}]\n".encode()
            for i in range(9)
        ),
        "once aliases are expanded",
    ),
    "recursive alias": (b"a: &a [1, *a]\n", "contains it"),
    "10k brackets": (b"a: " + b"[" * 10_000 + b"]" * 10_000 + b"\n", "nested deeper"),
    "deep mappings": (
        b"".join(b"  " * i + b"k:\n" for i in range(200)) + b"  " * 200 + b"v\n",
        "nested deeper",
    ),
    "invalid utf-8": (b"inventory:\n  ssh: {key: \xff\xfe}\n", "not UTF-8"),
    "empty": (b"", "top level must be a mapping"),
    "a list": (b"- 1\n- 2\n", "top level must be a mapping"),
    "tabs": (b"a:\n\t- b\n", "not valid YAML"),
    "too large": (b"a: " + b"x" * (5 << 20) + b"\n", "larger than"),
    "unclosed": (b"a: [1, 2\n", "not valid YAML"),
    "python tag": (b"a: !!python/object/apply:os.system ['true']\n", "not valid YAML"),
}


@pytest.mark.parametrize("name", sorted(RAW))
def test_a_hostile_file_is_a_clear_config_error(name: str, tmp_path: Path) -> None:
    text, message = RAW[name]
    path = tmp_path / "bad.yaml"
    path.write_bytes(text)
    with pytest.raises(ConfigError, match=message) as info:
        load_config(path)
    assert str(path) in str(info.value)
    playbook = tmp_path / "bad-book.yaml"
    playbook.write_bytes(text)
    with pytest.raises(ConfigError, match=message):
        load_playbook(playbook)


def test_dev_zero_and_a_missing_file_are_clear_errors() -> None:
    with pytest.raises(ConfigError, match="larger than"):
        load_config("/dev/zero")
    with pytest.raises(ConfigError, match="cannot read"):
        load_config("/nonexistent/lazarus.yaml")


def _with(dotted: str, value: object) -> dict:
    data = yaml.safe_load(yaml.safe_dump(BASE))
    node = data
    *parents, last = dotted.split(".")
    for key in parents:
        node = node[int(key)] if isinstance(node, list) else node.setdefault(key, {})
    node[last] = value
    return data


SERVICE = {"name": "api", "probe": {"http": "http://{address}/"}}
BOUNDS: list[tuple[str, object, str]] = [
    ("watch.interval", 0, "greater than 0"),
    ("watch.interval", float("nan"), "at most"),
    ("watch.interval", float("inf"), "at most"),
    ("watch.interval", "1" + "0" * 400 + "s", "at most"),
    ("inventory.ssh.connect_timeout", 0, "greater than 0"),
    ("inventory.ssh.command_timeout", -1, "negative"),
    ("playbooks.fleet_cap", 0, "greater than or equal to 1"),
    ("playbooks.fleet_cap", "0%", "above 0%"),
    ("playbooks.allow_commands", [{"argv0": "x", "args": ["("]}], "not a regular expression"),
    ("playbooks.out_of_band", ["ipmitool", "{addr}"], "unknown placeholder"),
    (
        "inventory.services",
        [{**SERVICE, "control": {"kind": "command", "restart": "sh -c 'unclosed"}}],
        "does not split",
    ),
    ("inventory.services", [{**SERVICE, "probe": {"http": "http://{addr}/"}}], "placeholder"),
    ("inventory.services", [{**SERVICE, "probe": {"http": "http://{0}/"}}], "URL template"),
    (
        "inventory.services",
        [{**SERVICE, "probe": {"http": "x", "timeout": float("nan")}}],
        "at most",
    ),
    (
        "inventory.services",
        [{**SERVICE, "control": {"kind": "command", "restart": "x {addr}"}}],
        "unknown placeholder",
    ),
    ("inventory.services", [{**SERVICE, "control": {"unit": "a;b"}}], "pattern"),
    ("inventory.hosts", [{"name": "h", "address": "-oProxyCommand=x"}], "pattern"),
    ("notify.timeout", 0, "greater than 0"),
]


@pytest.mark.parametrize(("field", "value", "message"), BOUNDS, ids=[b[0] for b in BOUNDS])
def test_check_refuses_bounds_that_would_crash_a_cycle(
    field: str, value: object, message: str, tmp_path: Path
) -> None:
    path = tmp_path / "lazarus.yaml"
    path.write_text(yaml.safe_dump(_with(field, value)))
    with pytest.raises(ConfigError, match=message):
        load_config(path)


BOOK = {
    "version": 1,
    "name": "bad-book",
    "trigger": {"matchers": ['symptom="disk_full"']},
}
STEPS: list[tuple[dict, str]] = [
    ({"id": "w", "action": "wait", "with": {"duration": float("inf")}}, "at most"),
    ({"id": "w", "action": "wait", "with": {"duration": "1e400s"}}, "not a duration"),
    (
        {"id": "w", "action": "wait", "with": {"duration": 1}, "retry_delay": float("nan")},
        "at most",
    ),
    ({"id": "w", "action": "wait", "with": {"duration": 1}, "timeout": 0}, "greater than 0"),
    (
        {
            "id": "c",
            "action": "disk.clean",
            "with": {"path": "/var/tmp/../etc", "older_than": "1d"},
        },
        "may not contain '..'",
    ),
    ({"id": "r", "action": "ssh.restart", "with": {"host": "-oProxyCommand=x"}}, "pattern"),
    ({"id": "r", "action": "ssh.restart", "with": {"service": "a b"}}, "pattern"),
    ({"id": "h", "action": "http.check", "with": {"interval": 0}}, "greater than 0"),
    (
        {
            "id": "rb",
            "action": "release.rollback",
            "with": {"releases": "{{ incident.labels.releases }}"},
        },
        "never a template",
    ),
]


@pytest.mark.parametrize(("step", "message"), STEPS, ids=[str(i) for i in range(len(STEPS))])
def test_playbook_check_refuses_unbounded_or_escaping_steps(
    step: dict, message: str, tmp_path: Path
) -> None:
    path = tmp_path / "bad-book.yaml"
    path.write_text(yaml.safe_dump({**BOOK, "steps": [step]}))
    with pytest.raises(ConfigError, match=message):
        load_playbook(path)


@pytest.mark.parametrize("name", ["alias bomb", "invalid utf-8", "empty", "10k brackets"])
def test_lazarus_check_exits_2_without_a_traceback(name: str, tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_bytes(RAW[name][0])
    done = subprocess.run(
        [sys.executable, "-m", "lazarus.cli", "check", "-c", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 2, done
    assert "Traceback" not in done.stderr + done.stdout
    assert str(path) in done.stderr
