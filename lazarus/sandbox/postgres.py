"""A throwaway PostgreSQL 15 cluster for the tests and benchmarks of database recovery.

Real initdb and pg_ctl as OS user ``postgres`` (Debian's postgresql-15 packages), on a free
loopback port, stopped by ``pg_ctl`` or, failing that, by the postmaster's PID.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

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
