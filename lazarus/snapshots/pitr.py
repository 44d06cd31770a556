"""Point-in-time recovery of a local PostgreSQL cluster: base backup + WAL archive -> a moment.

The cluster's own data directory is never deleted: it is moved aside (``<data>.pre_pitr_<ts>``)
before the base backup is laid down, and moved back if recovery does not complete.
"""

from __future__ import annotations

import os
import pwd
import shlex
import shutil
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from lazarus.errors import ActionError
from lazarus.snapshots._tools import PG_BIN, as_user, run

_STEP = "db.restore"


@dataclass(frozen=True)
class Cluster:
    """A PostgreSQL cluster on this machine; its postgresql.conf holds port and listen address."""

    data_dir: Path
    port: int
    bin_dir: Path = PG_BIN
    host: str = "127.0.0.1"
    os_user: str = "postgres"
    user: str = "postgres"  # the database role pg_basebackup and the recovery check use

    def tool(self, name: str) -> str:
        return str(self.bin_dir / name)

    def pg_ctl(self, *args: str, timeout: float) -> str:
        argv = as_user(self.os_user, [self.tool("pg_ctl"), *args, "-D", str(self.data_dir)])
        return run(argv, step=_STEP, timeout=timeout)

    def env(self) -> dict[str, str]:
        return {
            "PGHOST": self.host,
            "PGPORT": str(self.port),
            "PGUSER": self.user,
            "PGDATABASE": "postgres",
            "PGCONNECT_TIMEOUT": "5",
        }


class PitrReport(BaseModel):
    """What a point-in-time recovery did and where the data it replaced is kept."""

    model_config = ConfigDict(frozen=True)

    data_dir: Path
    kept_as: Path
    base_backup: Path
    to_time: datetime
    steps: list[str]
    seconds: float


def archive_command(wal_archive: Path) -> str:
    """An ``archive_command`` copying each finished WAL file into ``wal_archive`` (no overwrite)."""
    target = shlex.quote(str(wal_archive))
    return f"test ! -f {target}/%f && cp %p {target}/%f"


def base_backup(cluster: Cluster, dest: Path, *, timeout: float = 3600.0) -> Path:
    """A plain-format ``pg_basebackup`` (with the WAL it needs) into the new folder ``dest``."""
    dest = Path(dest)
    if dest.exists() and any(dest.iterdir()):
        raise ActionError("db.snapshot", f"base backup folder {dest} is not empty")
    dest.mkdir(parents=True, exist_ok=True, mode=0o700)
    _give(dest, cluster.os_user)
    argv = [
        cluster.tool("pg_basebackup"),
        "-D",
        str(dest),
        "-Fp",
        "-Xstream",
        "--checkpoint=fast",
        "--no-password",
    ]
    run(as_user(cluster.os_user, argv), step="db.snapshot", timeout=timeout, env=cluster.env())
    return dest


def restore_to_time(
    cluster: Cluster,
    base_backup: Path,
    wal_archive: Path,
    to_time: datetime,
    *,
    timeout: float = 600.0,
) -> PitrReport:
    """Bring the cluster back to how it was at ``to_time`` (tz-aware), replaying archived WAL."""
    if to_time.tzinfo is None:
        raise ActionError(_STEP, "to_time must carry a time zone (e.g. UTC)")
    started = time.monotonic()
    run(
        [cluster.tool("pg_verifybackup"), "--no-parse-wal", str(base_backup)],
        step=_STEP,
        timeout=timeout,
    )
    steps = [f"verified base backup {base_backup}"]
    data = cluster.data_dir
    kept = data.with_name(f"{data.name}.pre_pitr_{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}")
    if _running(cluster):
        cluster.pg_ctl("stop", "-m", "fast", "-w", "-t", str(int(timeout)), timeout=timeout + 5)
        steps.append("stopped the cluster")
    data.rename(kept)
    steps.append(f"moved {data} aside to {kept}")
    try:
        shutil.copytree(base_backup, data, symlinks=True)
        _recovery_settings(data, wal_archive, to_time)
        _give(data, cluster.os_user)
        os.chmod(data, 0o700)
        steps.append(f"laid down the base backup, recovery_target_time = {to_time.isoformat()}")
        cluster.pg_ctl(
            "start", "-w", "-t", str(int(timeout)), "-l", str(_log(data)), timeout=timeout + 5
        )
        _wait_promoted(cluster, timeout)
        steps.append("recovered to the target time and promoted")
    except (ActionError, OSError) as exc:
        reason = f"point-in-time recovery of {data} failed ({_why(exc)})"
        try:
            _put_back(cluster, kept, timeout)
        except (ActionError, OSError) as again:
            raise ActionError(
                _STEP,
                f"{reason}; putting the original back failed too "
                f"({_why(again)}): it is kept, untouched, in {kept}",
            ) from exc
        raise ActionError(
            _STEP, f"{reason}; the original data directory was put back and started"
        ) from exc
    return PitrReport(
        data_dir=data,
        kept_as=kept,
        base_backup=Path(base_backup),
        to_time=to_time,
        steps=steps,
        seconds=round(time.monotonic() - started, 3),
    )


def _recovery_settings(data: Path, wal_archive: Path, to_time: datetime) -> None:
    restore = f"cp {shlex.quote(str(wal_archive))}/%f %p"
    settings = {
        "restore_command": restore,
        "recovery_target_time": to_time.isoformat(),
        "recovery_target_action": "promote",
    }
    with open(data / "postgresql.auto.conf", "a") as conf:
        conf.write("# lazarus point-in-time recovery\n")
        conf.writelines(f"{k} = '{v.replace(chr(39), chr(39) * 2)}'\n" for k, v in settings.items())
    (data / "recovery.signal").touch()


def _wait_promoted(cluster: Cluster, timeout: float) -> None:
    """Bounded wait until the cluster has left recovery."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        answer = run(
            [cluster.tool("psql"), "-XAtc", "SELECT pg_is_in_recovery()"],
            step=_STEP,
            timeout=10,
            env=cluster.env(),
        )
        if answer.strip() == "f":
            return
        time.sleep(0.2)
    raise ActionError(_STEP, f"the cluster was still in recovery after {timeout:g}s")


def _put_back(cluster: Cluster, kept: Path, timeout: float) -> None:
    """Stop whatever runs in the data dir, move it away, and restore the original one."""
    data = cluster.data_dir
    if data.exists():
        if _running(cluster):
            cluster.pg_ctl("stop", "-m", "immediate", "-w", timeout=timeout)
        data.rename(data.with_name(kept.name.replace(".pre_pitr_", ".failed_pitr_")))
    kept.rename(data)
    cluster.pg_ctl(
        "start", "-w", "-t", str(int(timeout)), "-l", str(_log(data)), timeout=timeout + 5
    )


def _why(exc: BaseException) -> str:
    if isinstance(exc, OSError):
        return f"{exc.strerror}: {exc.filename}"
    return str(exc)


def _running(cluster: Cluster) -> bool:
    try:
        cluster.pg_ctl("status", timeout=10)
    except ActionError:
        return False
    return True


def _log(data: Path) -> Path:
    return data / "lazarus-pg_ctl.log"


def _give(path: Path, user: str) -> None:
    """chown -R ``path`` to ``user`` (when we are root; otherwise we already own it)."""
    if os.geteuid() != 0:
        return
    entry = pwd.getpwnam(user)
    os.chown(path, entry.pw_uid, entry.pw_gid)
    for root, dirs, names in os.walk(path):
        for name in dirs + names:
            os.chown(os.path.join(root, name), entry.pw_uid, entry.pw_gid, follow_symlinks=False)
