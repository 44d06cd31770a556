"""Shared real components for the tests: each fixture starts a real part and stops it by PID."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from lazarus.sandbox import Sandbox
from lazarus.sandbox.sinks import SinkProcess


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

PG_BIN = Path("/usr/lib/postgresql/15/bin")


class PostgresServer:
    """A throwaway PostgreSQL cluster on a free loopback port, run as OS user ``postgres``.

    Its settings go into postgresql.conf (not ``pg_ctl -o``) so a restart after a
    point-in-time recovery comes up the same way. ``stop()`` ends it and removes its folder.
    """

    def __init__(self, *, archive: bool = False, auth_host: str = "scram-sha-256"):
        import secrets
        import socket
        import tempfile

        # under /tmp (not pytest's root-only folder) so the postgres user can reach it
        self.root = Path(tempfile.mkdtemp(prefix="lazarus-pg-"))
        self.data_dir, self.wal_archive = self.root / "data", self.root / "wal"
        self.wal_archive.mkdir()
        for path in (self.root, self.wal_archive):
            shutil.chown(path, "postgres", "postgres")
        self.host, self.user, self.password = "127.0.0.1", "postgres", secrets.token_urlsafe(16)
        with socket.socket() as s:
            s.bind((self.host, 0))
            self.port = s.getsockname()[1]
        try:
            pwfile = self.root / "pw"
            pwfile.write_text(self.password)
            shutil.chown(pwfile, "postgres")
            self._as_postgres(
                "initdb",
                "-D",
                str(self.data_dir),
                "-U",
                self.user,
                "-E",
                "UTF8",
                "--locale=C",
                "--auth-local=trust",
                f"--auth-host={auth_host}",
                f"--pwfile={pwfile}",
            )
            pwfile.unlink()
            conf = {
                "port": str(self.port),
                "listen_addresses": self.host,
                "unix_socket_directories": str(self.root),
                "fsync": "off",
            }
            if archive:
                from lazarus.snapshots import archive_command

                conf |= {
                    "wal_level": "replica",
                    "archive_mode": "on",
                    "archive_command": archive_command(self.wal_archive),
                }
            with open(self.data_dir / "postgresql.conf", "a") as f:
                for key, value in conf.items():
                    f.write(f"{key} = '{value.replace(chr(39), chr(39) * 2)}'\n")
            self._as_postgres(
                "pg_ctl",
                "start",
                "-D",
                str(self.data_dir),
                "-w",
                "-t",
                "60",
                "-l",
                str(self.root / "server.log"),
            )
        except BaseException:
            self.stop()
            raise

    def dsn(self, dbname: str = "postgres") -> str:
        return f"postgresql://{self.user}:{self.password}@{self.host}:{self.port}/{dbname}"

    def stop(self) -> None:
        """``pg_ctl stop -m immediate``; if that fails, SIGKILL the postmaster by its PID."""
        import signal
        import subprocess

        pid_file = self.data_dir / "postmaster.pid"
        if pid_file.exists():
            try:
                self._as_postgres(
                    "pg_ctl", "stop", "-D", str(self.data_dir), "-m", "immediate", "-w", "-t", "30"
                )
            except (subprocess.CalledProcessError, subprocess.TimeoutExpired):
                if pid_file.exists():
                    os.kill(int(pid_file.read_text().split()[0]), signal.SIGKILL)
        shutil.rmtree(self.root, ignore_errors=True)

    @staticmethod
    def _as_postgres(tool: str, *args: str) -> None:
        import subprocess

        subprocess.run(
            ["runuser", "-u", "postgres", "--", str(PG_BIN / tool), *args],
            check=True,
            capture_output=True,
            timeout=120,
        )


def _need_postgres() -> None:
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
    _need_postgres()
    server = PostgresServer()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def postgres_pitr() -> Iterator[PostgresServer]:
    """A cluster of its own archiving every WAL file to ``wal_archive``, for point-in-time tests."""
    _need_postgres()
    server = PostgresServer(archive=True, auth_host="trust")
    try:
        yield server
    finally:
        server.stop()
