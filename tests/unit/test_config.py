"""Config loading: good files load, each bad file fails with exactly the message beside it."""

from __future__ import annotations

from pathlib import Path

import pytest

from lazarus.config import ConfigError, ConfigErrorGroup, load_config, parse_duration

FIXTURES = Path(__file__).parents[1] / "fixtures" / "config"
BAD = sorted((FIXTURES / "bad").glob("*.yaml"))


@pytest.mark.parametrize("path", BAD, ids=lambda p: p.stem)
def test_bad_config_fails_with_the_expected_message(path: Path, monkeypatch) -> None:
    monkeypatch.chdir(path.parent)
    monkeypatch.delenv("LAZARUS_TEST_UNSET_URL", raising=False)
    with pytest.raises(ConfigError) as caught:
        load_config(path.name, check_secrets=True)
    messages = [str(e) for e in getattr(caught.value, "errors", [caught.value])]
    assert messages == path.with_suffix(".err").read_text().splitlines()


def test_every_problem_is_reported_not_just_the_first(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(
        "inventory:\n"
        "  ssh: {key: k}\n"
        "  hosts:\n"
        "    - {name: a, address: x, colour: red}\n"
        "    - {name: a, address: y}\n"
        "watch: {interval: never}\n"
    )
    with pytest.raises(ConfigErrorGroup) as caught:
        load_config(path)
    lines = sorted(e.line for e in caught.value.errors)
    assert lines == [4, 6]  # the duplicate waits until the hosts themselves are valid


def test_good_configs_load(monkeypatch) -> None:
    monkeypatch.setenv("LAZARUS_TEST_SSH_KEY", "not-a-real-key")
    monkeypatch.setenv("LAZARUS_TEST_CHAT_URL", "json://127.0.0.1:9/chat")
    full = load_config(FIXTURES / "good" / "full.yaml", check_secrets=True)
    assert [h.name for h in full.inventory.hosts_of(full.inventory.services[0])] == [
        "web-1",
        "web-2",
    ]
    assert full.inventory.ssh.connect_timeout == 5.0
    assert full.recovery.enabled is True
    assert full.playbooks.cap_for(20) == 2
    assert full.detectors.rules[0].for_ == 2
    assert full.notify.route.routes[0].continue_ is True
    minimal = load_config(FIXTURES / "good" / "minimal.yaml")
    assert minimal.path("known_hosts") == (FIXTURES / "good" / "known_hosts").resolve()
    assert minimal.inventory.ssh.host_key_policy == "reject"


@pytest.mark.parametrize(
    ("text", "seconds"), [("30s", 30), ("5m", 300), ("1h", 3600), ("250ms", 0.25), (7, 7)]
)
def test_durations(text: str | int, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["soon", "-5s", "5 parsecs", True])
def test_bad_durations(text: object) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


def test_databases_are_watched_on_their_own_host(monkeypatch) -> None:
    monkeypatch.setenv("LAZARUS_TEST_SSH_KEY", "k")
    monkeypatch.setenv("LAZARUS_TEST_CHAT_URL", "json://127.0.0.1:9/chat")
    inventory = load_config(FIXTURES / "good" / "full.yaml").inventory
    watched = {s.name: s for s in inventory.watched()}
    assert list(watched) == ["api", "cache", "worker", "orders-db"]
    db = inventory.service("orders-db")
    assert [h.name for h in inventory.hosts_of(db)] == ["web-2"]  # never every host
    assert db.probe.kind == "postgres" and db.probe.postgres == inventory.databases[0].dsn
    assert db.control.unit == "postgresql"
    assert [watched[n].probe.kind for n in ("api", "cache", "worker")] == [
        "http",
        "tcp",
        "command",
    ]
