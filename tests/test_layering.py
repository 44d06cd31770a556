"""The import arrows point one way: flows -> tasks -> lazarus; the core never imports Prefect,
and each third-party client lives in one adapter module."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]

# client library -> the only core module(s) allowed to import it
ADAPTERS = {
    "paramiko": {"lazarus/remote/ssh.py"},
    "cryptography": {"lazarus/remote/ssh.py"},
    "apprise": {"lazarus/notify/deliver.py"},
    # snapshots: the databases Lazarus guards; db.py: the PostgreSQL its own store lives in;
    # sources/postgres.py: a database's liveness probe
    "psycopg": {
        "lazarus/snapshots/postgres.py",
        "lazarus/snapshots/_pg.py",
        "lazarus/snapshots/interval.py",
        "lazarus/db.py",
        "lazarus/sources/postgres.py",
    },
    "httpx": {
        "lazarus/sources/http.py",
        "lazarus/sources/prometheus.py",
        "lazarus/sources/heartbeat.py",
    },
}


def imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def files(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


@pytest.mark.parametrize("path", files("lazarus"), ids=lambda p: str(p.relative_to(ROOT)))
def test_core_never_imports_prefect_tasks_or_flows(path: Path) -> None:
    assert not imports(path) & {"prefect", "tasks", "flows"}


@pytest.mark.parametrize("path", files("tasks"), ids=lambda p: str(p.relative_to(ROOT)))
def test_tasks_never_import_flows(path: Path) -> None:
    assert "flows" not in imports(path)


@pytest.mark.parametrize("client", sorted(ADAPTERS))
def test_each_client_is_imported_by_its_adapter_only(client: str) -> None:
    users = {str(p.relative_to(ROOT)) for p in files("lazarus") if client in imports(p)}
    assert users <= ADAPTERS[client]
