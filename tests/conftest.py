"""Shared real components for the tests: each fixture starts a real part and stops it by PID."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings

from lazarus.sandbox import Sandbox
from lazarus.sandbox.postgres import PG_BIN, PostgresServer
from lazarus.sandbox.sinks import SinkProcess

# Property tests draw the same examples on every run: a red CI is a regression, not a dice roll.
settings.register_profile("lazarus", derandomize=True)
settings.load_profile("lazarus")


@pytest.fixture(scope="session")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    """Three real hosts (sshd + supervisord + web in network namespaces) on 10.214.0.0/24.

    Skips when this machine cannot run them (not root, or sshd/supervisord missing).
    """
    if os.geteuid() != 0:
        pytest.skip("the sandbox needs root (network namespaces, sshd as root)")
    missing = [
        p
        for p in ("/usr/sbin/sshd", "supervisord", "supervisorctl", "ssh-keygen", "ip")
        if shutil.which(p) is None
    ]
    if missing:
        pytest.skip(
            f"the sandbox needs {', '.join(missing)} (apt-get install openssh-server"
            " supervisor iproute2)"
        )
    # Two test sessions at once on one machine need their own: LAZARUS_TEST_SANDBOX=name:subnet
    name, _, subnet = os.environ.get("LAZARUS_TEST_SANDBOX", "t:214").partition(":")
    sb = Sandbox.up(
        Path(tmp_path_factory.mktemp("sandbox")), name=name, subnet=int(subnet), hosts=3
    )
    try:
        yield sb
    finally:
        sb.down()


@pytest.fixture(scope="session")
def sinks(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SinkProcess]:
    """Real SMTP (aiosmtpd) and HTTP capture sinks on free loopback ports; needs no root.

    Shared by the session: a test marks what it sends (a fresh token in the title) and counts
    only its own records; one that uses ``fail_http`` heals it again.
    """
    with SinkProcess(tmp_path_factory.mktemp("sinks")) as running:
        yield running


# --- PostgreSQL 15 clusters (database recovery) ----------------------------------------------


def need_postgres() -> None:
    import pwd

    if os.geteuid() != 0:
        pytest.skip("the PostgreSQL tests run initdb as user postgres: they need root")
    tools = ("initdb", "pg_ctl", "pg_dump", "pg_restore", "pg_basebackup", "pg_verifybackup")
    missing = [t for t in tools if not (PG_BIN / t).exists()]
    if missing or shutil.which("runuser") is None:
        pytest.skip(
            f"PostgreSQL 15 tools missing ({', '.join(missing) or 'runuser'}):"
            " apt-get install postgresql-15"
        )
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        pytest.skip("no OS user 'postgres' (apt-get install postgresql-15 creates it)")


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """One PostgreSQL 15 cluster for the session (password auth on 127.0.0.1, fsync off)."""
    need_postgres()
    server = PostgresServer()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def postgres_pitr() -> Iterator[PostgresServer]:
    """A cluster of its own archiving every WAL file to ``wal_archive``, for point-in-time tests."""
    need_postgres()
    server = PostgresServer(archive=True, auth_host="trust")
    try:
        yield server
    finally:
        server.stop()


# --- the store on PostgreSQL: the unit tests of every store user, run against a real server ----


@pytest.fixture(autouse=True)
def _store_on_postgres(monkeypatch: pytest.MonkeyPatch) -> None:
    """With LAZARUS_TEST_STORE_URL=postgresql://…/postgres set, every ``Store(path)`` a test opens
    is a fresh PostgreSQL database of that server instead (one per path), so the same tests
    prove the same code on both (tests/e2e/test_store_postgres.py runs them so)."""
    base = os.environ.get("LAZARUS_TEST_STORE_URL")
    if not base:
        return
    import hashlib

    import psycopg

    from lazarus import store as store_module

    real = store_module.Store.__init__
    made: set[str] = set()

    def on_postgres(self: Any, target: Any) -> None:
        if str(target).startswith("postgresql://"):
            return real(self, target)
        name = "t_" + hashlib.blake2b(str(target).encode(), digest_size=8).hexdigest()
        if name not in made:
            with psycopg.connect(base, autocommit=True) as admin:
                admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
                admin.execute(f"CREATE DATABASE {name}")
            made.add(name)
        return real(self, base.rsplit("/", 1)[0] + "/" + name)

    monkeypatch.setattr(store_module.Store, "__init__", on_postgres)
