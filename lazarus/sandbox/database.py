"""The sandbox's PostgreSQL: a real cluster supervised on one sandbox host, which the web
service on every host needs.

Its data lives under /tmp (the OS user ``postgres`` must reach it; a test's tmp folder is
root-only), it listens on the host's own address, and supervisord runs it as ``postgres`` so
``supervisorctl stop postgres`` is the ``db-stop`` fault and ``ssh.restart`` on that host is
the cure. The DSN, password included, is a ``file:`` secret beside the sandbox's config.
"""

from __future__ import annotations

import secrets
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from lazarus.sandbox import _proc
from lazarus.sandbox.postgres import PG_BIN

PROGRAM = "postgres"
PORT = 5432
NAME = "orders-db"


@dataclass(frozen=True)
class SandboxDatabase:
    """Where the sandbox database runs: its host, address and data folder."""

    host: str
    address: str
    data_dir: str

    @property
    def dsn_file(self) -> Path:
        return Path(self.data_dir).parent / "dsn"


def available() -> bool:
    """PostgreSQL 15 server binaries and the ``postgres`` OS user exist here."""
    import pwd

    try:
        pwd.getpwnam("postgres")
    except KeyError:
        return False
    return (PG_BIN / "postgres").exists() and (PG_BIN / "initdb").exists()


def init(host: str, address: str, root: Path) -> SandboxDatabase:
    """A fresh cluster for ``host`` (initdb as ``postgres``), password auth from the bridge;
    the DSN file is written root-only beside the sandbox config (``root``)."""
    folder = Path(tempfile.mkdtemp(prefix="lazarus-sandbox-pg-"))
    data = folder / "data"
    password = secrets.token_urlsafe(16)
    pwfile = folder / "pw"
    pwfile.write_text(password)
    shutil.chown(folder, "postgres", "postgres")
    shutil.chown(pwfile, "postgres", "postgres")
    _proc.run(
        ["runuser", "-u", "postgres", "--", str(PG_BIN / "initdb"), "-D", str(data), "-U",
         "postgres", "-E", "UTF8", "--locale=C", "--auth-local=trust",
         "--auth-host=scram-sha-256", f"--pwfile={pwfile}"],
        timeout=120,
    )  # fmt: skip
    pwfile.unlink()
    with (data / "pg_hba.conf").open("a") as hba:
        hba.write("host all all 0.0.0.0/0 scram-sha-256\n")
    db = SandboxDatabase(host, address, str(data))
    dsn = root / "orders-db.dsn"
    dsn.write_text(f"postgresql://postgres:{password}@{address}:{PORT}/postgres")
    dsn.chmod(0o600)
    return db


def program(db: SandboxDatabase, host_dir: Path) -> str:
    """The supervisord ``[program:postgres]`` section (appended to the host's config)."""
    command = (
        f"{PG_BIN / 'postgres'} -D {db.data_dir} -c listen_addresses={db.address}"
        f" -c port={PORT} -c unix_socket_directories={Path(db.data_dir).parent} -c fsync=off"
    )
    return (
        f"\n[program:{PROGRAM}]\n"
        f"command={command}\n"
        "user=postgres\n"
        "autostart=true\n"
        "autorestart=false\n"
        "startsecs=2\n"
        "stopsignal=INT\n"
        "stopwaitsecs=10\n"
        f"stdout_logfile={host_dir / 'postgres.log'}\n"
        "redirect_stderr=true\n"
    )


def remove(db: SandboxDatabase) -> None:
    """Delete the cluster's folder (its server must be stopped)."""
    shutil.rmtree(Path(db.data_dir).parent, ignore_errors=True)


def config_entry(db: SandboxDatabase, root: Path) -> dict:
    """The ``inventory.databases`` entry of the sandbox config, the README's way."""
    return {
        "name": NAME,
        "kind": "postgres",
        "host": db.host,
        "dsn": f"file:{root / 'orders-db.dsn'}",
        "snapshots": {"dir": "snapshots/orders-db"},
        "control": {
            "kind": "supervisor",
            "unit": PROGRAM,
            "config": f"{root}/hosts/{{host}}/supervisord.conf",
        },
    }
