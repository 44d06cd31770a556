"""Playbook actions against real parts: the sandbox's sshd + supervisord, and PostgreSQL 15."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from lazarus.config import Config, Database
from lazarus.model import Incident, IncidentState
from lazarus.playbooks import Hooks, Playbook, PlaybookSettings, StepContext, load_playbook, run
from lazarus.remote.ssh import SshExecutor
from lazarus.sandbox import Sandbox
from lazarus.sandbox import files as sandbox_files

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).parents[2]
_names = itertools.count(1)


def incident(symptom: str, host: str = "web-1", **labels: str) -> Incident:
    return Incident(
        1,
        "f",
        host,
        sandbox_files.SERVICE,
        symptom,
        "critical",
        IncidentState.OPEN,
        "",
        labels,
        0.0,
    )


def one_step(step: dict[str, Any]) -> Playbook:
    return Playbook.model_validate(
        {
            "version": 1,
            "name": "t",
            "trigger": {"matchers": ['a="b"']},
            "steps": [step],
        }
    )


def test_service_down_playbook_brings_a_killed_service_back(
    sandbox: Sandbox, config: Config, ex: SshExecutor
) -> None:
    sandbox.fault("web-2", "kill")
    assert sandbox.health("web-2") is None
    book = load_playbook(ROOT / "playbooks" / "service-down.yaml")
    result = run(book, StepContext(incident("service_down", "web-2"), config, executor=ex))
    assert result.status == "resolved", result
    assert sandbox.health("web-2") == 200 and sandbox.service_pid("web-2") is not None


def test_ssh_run_refuses_an_unlisted_command_without_connecting(config: Config) -> None:
    # web-1 points at a closed loopback port: had it tried to connect, the error would differ
    hosts = [
        h.model_copy(update={"address": "127.0.0.1", "port": 1}) for h in config.inventory.hosts
    ]
    broken = config.model_copy(
        update={"inventory": config.inventory.model_copy(update={"hosts": hosts})}
    )
    book = one_step({"id": "x", "action": "ssh.run", "with": {"argv": ["rm", "-rf", "/tmp/x"]}})
    with SshExecutor(broken.inventory.ssh, broken.base_dir) as ex:
        result = run(book, StepContext(incident("x"), broken, executor=ex))
    assert result.status == "failed" and "not in allow_commands" in result.error


def test_release_rollback_flips_a_real_symlink(
    sandbox: Sandbox, config: Config, ex: SshExecutor, tmp_path: Path
) -> None:
    releases = tmp_path / "releases"  # the sandbox hosts share this machine's file system
    for name in ("2026-11-01", "2026-11-15", "2026-11-28"):
        (releases / name).mkdir(parents=True)
    (releases / "current").symlink_to("2026-11-28")
    book = one_step(
        {
            "id": "rb",
            "action": "release.rollback",
            "with": {"releases": str(releases)},
        }
    )
    ctx = StepContext(incident("bad", "web-1"), config, executor=ex)
    approved: list[str] = []
    result = run(book, ctx, Hooks(approve=lambda s, p: approved.append(s.id) or True))
    assert result.status == "resolved", result
    assert approved == [], "a rollback is reversible: nobody is asked"
    assert os.readlink(releases / "current") == "2026-11-15"
    assert "2026-11-28 -> 2026-11-15" in result.steps[0].detail
    assert not (releases / ".current.tmp").exists() and sandbox.health("web-1") == 200


def _sql(dsn: str, query: str) -> list[tuple]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        cur = conn.execute(query)  # type: ignore[arg-type]
        return cur.fetchall() if cur.description else []


@pytest.fixture
def shop(postgres: Any, tmp_path: Path) -> Iterator[Database]:
    name = f"pbshop{next(_names)}"
    _sql(postgres.dsn("postgres"), f'CREATE DATABASE "{name}"')
    _sql(
        postgres.dsn(name),
        "CREATE TABLE orders (id int PRIMARY KEY, amount int NOT NULL);"
        " INSERT INTO orders SELECT g, g FROM generate_series(1, 100) g;",
    )
    yield Database(
        name=name,
        kind="postgres",
        dsn=postgres.dsn(name),
        snapshots={"dir": str(tmp_path / "snaps")},
        tables=["orders"],
    )
    rows = _sql(
        postgres.dsn("postgres"),
        f"SELECT datname FROM pg_database WHERE starts_with(datname, '{name}')",
    )
    for (db,) in rows:
        _sql(postgres.dsn("postgres"), f'DROP DATABASE "{db}" WITH (FORCE)')


def test_db_corrupt_playbook_restores_a_dropped_table(shop: Database, tmp_path: Path) -> None:
    from lazarus import snapshots

    snapshots.take(shop, Path(shop.snapshots.dir))  # the scheduled snapshot, verified good
    _sql(shop.dsn, "DROP TABLE orders")
    config = Config.model_validate(
        {
            "inventory": {
                "ssh": {"key": "k"},
                "hosts": [{"name": "db-1", "address": "127.0.0.1"}],
                "databases": [
                    {
                        **shop.model_dump(),
                        "host": "db-1",  # verify: the table is back, whole
                        "checks": [
                            {"name": "orders", "sql": "SELECT count(*) FROM orders", "min": 100}
                        ],
                    }
                ],
            },
            "base_dir": str(tmp_path),
        }
    )
    book = load_playbook(ROOT / "playbooks" / "db-corrupt.yaml")
    ctx = StepContext(incident("db_corrupt", database=shop.name), config, PlaybookSettings())
    result = run(book, ctx, Hooks(approve=lambda s, p: True))
    assert result.status == "resolved", result
    assert _sql(shop.dsn, "SELECT count(*), sum(amount) FROM orders") == [(100, 5050)]
    kept = [s for s in snapshots.list_snapshots(Path(shop.snapshots.dir), shop.name)]
    assert len(kept) >= 2  # the good one and the damaged state kept by the playbook


def test_disk_clean_removes_only_old_files_under_allowed_paths(
    config: Config, ex: SshExecutor, tmp_path: Path
) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "old log.1").write_bytes(b"x" * 1000)  # a space: one file, not two
    (logs / "new.log").write_bytes(b"y" * 10)
    os.utime(logs / "old log.1", (0, 0))
    settings = PlaybookSettings(clean_paths=[str(logs)])
    book = one_step(
        {"id": "c", "action": "disk.clean", "with": {"path": str(logs), "older_than": "1d"}}
    )
    result = run(book, StepContext(incident("disk_full"), config, settings, ex))
    assert result.status == "resolved" and "(1000 bytes)" in result.steps[0].detail
    assert sorted(p.name for p in logs.iterdir()) == ["new.log"]
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "precious").write_bytes(b"z" * 100)
    os.utime(victim / "precious", (0, 0))
    (logs / "link").symlink_to(victim)
    sneaky = one_step(  # a symlink out of the allowed folder, resolved on the host
        {"id": "c", "action": "disk.clean", "with": {"path": f"{logs}/link", "older_than": "1d"}}
    )
    refused = run(sneaky, StepContext(incident("disk_full"), config, settings, ex))
    assert refused.status == "failed" and "not under clean_paths" in refused.error
    assert (victim / "precious").exists()
    outside = one_step(
        {"id": "c", "action": "disk.clean", "with": {"path": str(tmp_path), "older_than": "1d"}}
    )
    refused = run(outside, StepContext(incident("disk_full"), config, settings, ex))
    assert refused.status == "failed" and "not under clean_paths" in refused.error
