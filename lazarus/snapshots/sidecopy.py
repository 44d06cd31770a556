"""A copy of a PostgreSQL cluster as it was at a moment, started on the side: base backup + WAL.

Point-of-failure and fault-interval recovery read the past from such a copy and never touch
the live cluster's files: the newest base backup finished before the moment is copied into a
private folder, recovery replays the archived WAL up to ``recovery_target_time`` and promotes,
and the copy listens on a free loopback port of its own until it is stopped and deleted.

Base backups are ``pg_basebackup -Fp -Xstream`` folders in ``pitr.base_backups``, each with a
``lazarus-done`` file holding the UTC time it finished (a backup is usable only from then).
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from lazarus.config import Database
from lazarus.errors import ActionError
from lazarus.snapshots._pg import Server
from lazarus.snapshots._tools import PG_BIN, as_user, run
from lazarus.snapshots.pitr import _give, _recovery_settings

DONE = "lazarus-done"
_STAMP = "%Y%m%dT%H%M%S.%fZ"


@dataclass(frozen=True)
class SideCopy:
    """A running copy of the cluster at ``at``; ``server`` reaches the database on it."""

    at: datetime
    base_backup: Path
    server: Server


def refuse_without_pitr(db: Database, step: str) -> None:
    """One clear line when point-in-time work is asked of a database without WAL archiving."""
    if db.kind != "postgres" or db.pitr is None:
        raise ActionError(
            step,
            f"{db.name}: point-in-time and interval recovery need WAL archiving, and "
            f"databases[{db.name}].pitr is not set (see the README: point-in-time recovery); "
            "snapshot restore (db.restore) stays available",
        )


def take_base_backup(db: Database, folder: Path, *, timeout: float = 3600.0) -> Path:
    """``pg_basebackup`` of the database's cluster into a new folder of ``folder``."""
    server = Server(db.dsn, db.name, "db.snapshot")
    dest = Path(folder) / f"base-{datetime.now(UTC).strftime(_STAMP)}"
    dest.mkdir(parents=True, mode=0o700)
    args = ["-D", str(dest), "-Fp", "-Xstream", "--checkpoint=fast"]
    try:
        server.tool("pg_basebackup", *args, step="db.snapshot", timeout=timeout)
    except ActionError:
        shutil.rmtree(dest, ignore_errors=True)
        raise
    (dest / DONE).write_text(datetime.now(UTC).isoformat())
    return dest


def prune_base_backups(folder: Path, keep: int) -> list[Path]:
    """Delete all but the ``keep`` newest finished base backups (unfinished ones after an hour)."""
    found = sorted(Path(folder).glob("base-*"), reverse=True)  # names sort by time
    finished = [p for p in found if (p / DONE).exists()]
    stale = [p for p in found if not (p / DONE).exists() and time.time() - p.stat().st_mtime > 3600]
    removed = finished[keep:] + stale
    for path in removed:
        shutil.rmtree(path, ignore_errors=True)
    return removed


def base_backup_before(folder: Path, at: datetime) -> Path:
    """The newest finished base backup that finished before ``at``."""
    done = []
    for path in Path(folder).glob("base-*"):
        try:
            finished = datetime.fromisoformat((path / DONE).read_text().strip())
        except (OSError, ValueError):
            continue  # unfinished or foreign
        if finished < at:
            done.append((finished, path))
    if not done:
        raise ActionError("db.pitr", f"no finished base backup in {folder} before {at.isoformat()}")
    return max(done)[1]


@contextmanager
def side_copy(
    db: Database, at: datetime, *, os_user: str = "postgres", timeout: float = 600.0
) -> Iterator[SideCopy]:
    """The cluster as it was at ``at`` (tz-aware), running on the side; removed afterwards."""
    refuse_without_pitr(db, "db.pitr")
    assert db.pitr is not None
    live = Server(db.dsn, db.name, "db.pitr")
    _archive_past(live, at, timeout)
    backup = base_backup_before(Path(db.pitr.base_backups), at)
    root = Path(tempfile.mkdtemp(prefix="lazarus-side-"))
    data = root / "data"
    try:
        shutil.copytree(backup, data, symlinks=True, ignore=shutil.ignore_patterns(DONE))
        for stale in ("postmaster.pid", "standby.signal"):
            (data / stale).unlink(missing_ok=True)
        port = _free_port()
        with open(data / "postgresql.auto.conf", "a") as conf:
            conf.write(
                f"port = {port}\nlisten_addresses = '127.0.0.1'\n"
                f"unix_socket_directories = '{root}'\narchive_mode = off\n"
            )
        _recovery_settings(data, Path(db.pitr.wal_archive).resolve(), at)
        _give(root, os_user)
        os.chmod(data, 0o700)
        pg_ctl = [str(PG_BIN / "pg_ctl"), "-D", str(data), "-l", str(root / "log")]
        run(
            as_user(os_user, [*pg_ctl, "start", "-w", "-t", str(int(timeout))]),
            step="db.pitr",
            timeout=timeout + 5,
        )
        server = live.moved("127.0.0.1", port)
        _wait_promoted(server, timeout, root / "log")
        yield SideCopy(at, backup, server)
    finally:
        if (data / "postmaster.pid").exists():
            stop = [str(PG_BIN / "pg_ctl"), "-D", str(data), "stop", "-m", "immediate", "-w"]
            with suppress(ActionError):  # removing its folder below ends it for good
                run(as_user(os_user, stop), step="db.pitr", timeout=60)
        shutil.rmtree(root, ignore_errors=True)


def _archive_past(live: Server, at: datetime, timeout: float) -> None:
    """Commit an empty transaction (a commit record stamped after ``at``: recovery knows where
    to stop), switch WAL and wait until that segment is archived."""
    with live.connect(timeout=30) as conn:
        conn.execute("SELECT txid_current()")
        segment = conn.execute("SELECT pg_walfile_name(pg_switch_wal())").fetchone()[0]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            row = conn.execute("SELECT last_archived_wal, last_failed_wal FROM pg_stat_archiver")
            archived, _failed = row.fetchone()
            if archived is not None and archived >= segment:
                return
            time.sleep(0.2)
    raise ActionError("db.pitr", f"WAL segment {segment} was not archived within {timeout:g}s")


def _wait_promoted(server: Server, timeout: float, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with server.connect("postgres", timeout=10) as conn:
                if not conn.execute("SELECT pg_is_in_recovery()").fetchone()[0]:
                    return
        except ActionError:
            pass
        time.sleep(0.2)
    tail = log.read_text()[-400:] if log.exists() else ""
    raise ActionError("db.pitr", f"the side copy did not finish recovery in {timeout:g}s: {tail}")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
