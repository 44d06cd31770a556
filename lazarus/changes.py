"""Changes the watch can see on its hosts, recorded so diagnosis can blame them.

Per service and host, one SSH round trip reads what the inventory names: the release its
``releases`` link points to and the link's own mtime (when it was switched), the hash and
mtime of each ``watch_files`` entry, and when the unit's process started (its service manager's
main PID; not for ``control: command``). A value that differs from the one seen last is a
change record (``kind`` ``release``, ``file`` or ``restart``) stamped with that time; the first
sight of a value is the baseline, not a change. A value that changed inside a remediation
Lazarus ran on that host or service (a restart, a rollback's switch) is Lazarus's own doing,
already in that incident's actions, and not a change. ``lazarus.diagnose`` ranks
``bad_release`` (``recent_change`` for the others) from them.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from lazarus.config import Config, Host, Service
from lazarus.diagnose.evidence import Change
from lazarus.errors import LazarusError
from lazarus.remote import Executor
from lazarus.remote.control import control_argv
from lazarus.store import Store

log = logging.getLogger(__name__)
KEEP_S = 7 * 86400.0  # changes older than this are forgotten

# $1 the releases folder ('' = none), $2 its link's name, $3 the unit's process as last seen
# ("pid:starttime", '' = none), $4 how many watched files follow, then those files, then the
# argv that prints the unit's main PID (none: not read; not run while the last-seen process
# still lives: supervisorctl is a Python start). Constant text: paths ride as arguments. Each
# line: kind, time, value, name, where time is an mtime, or for ``start`` the process's age in
# seconds (the host's clock may be skewed; an age is not).
_READ = (
    'r=$1; l=$2; k=$3; n=$4; shift 4; if [ -n "$r" ]; then t=$(readlink "$r/$l" || echo -); '
    'printf "release %s %s %s\\n" "$(stat -c %Y "$r/$l" 2>/dev/null || echo 0)" "$t" "$l"; fi; '
    'while [ "$n" -gt 0 ]; do f=$1; shift; n=$((n - 1)); '
    'h=$(sha256sum < "$f" 2>/dev/null | cut -c1-16) || h=-; '
    'printf "file %s %s %s\\n" "$(stat -c %Y "$f" 2>/dev/null || echo 0)" "${h:--}" "$f"; done; '
    'st() { sed "s/.*) //" "/proc/${1:-0}/stat" 2>/dev/null | cut -d" " -f20; }; '
    'if [ $# -gt 0 ]; then p=${k%%:*}; s=$(st "$p"); '
    'if [ -z "$k" ] || [ "$p:$s" != "$k" ]; then '
    'p=$("$@" 2>/dev/null | tr -dc 0-9); s=$(st "$p"); fi; '
    'if [ "${p:-0}" -gt 0 ] && [ -n "$s" ]; then b=$(awk "/^btime/ {print \\$2}" /proc/stat); '
    'a=$(( $(date +%s) - b - s / $(getconf CLK_TCK) )); [ "$a" -ge 0 ] || a=0; '
    'printf "start %s %s:%s unit\\n" "$a" "$p" "$s"; fi; fi'
)
READERS = 16  # hosts read at once
_PROCESS = re.compile(r"^[0-9]+:[0-9]+$")  # a start as read: pid:starttime
SAME_START_S = 2.0  # a start this close to a remediation's window is that remediation's


@dataclass(frozen=True)
class Seen:
    """One value read on a host: a release link's target or a file's hash, and its mtime."""

    host: str
    service: str
    kind: str
    name: str
    value: str
    mtime: float

    @property
    def key(self) -> str:
        return f"{self.kind}:{self.service}@{self.host}:{self.name}"


def watched(config: Config) -> list[tuple[Service, Host]]:
    """The (service, host) pairs that declare something to watch for changes: their unit's
    start is read in the same round trip (the watch dials no host for it alone)."""
    inv = config.inventory
    return [(s, h) for s in inv.services if s.releases or s.watch_files for h in inv.hosts_of(s)]


def pid_argv(service: Service, host: Host) -> list[str]:
    """The argv that prints the unit's main PID (0 or nothing when it is not running); empty
    for ``control: command``, whose templates say nothing about a PID."""
    control, unit = service.control, service.control.unit or service.name
    if control.kind == "supervisor":
        *head, _, name = control_argv(control, "status", service, host)
        return [*head, "pid", name]
    if control.kind == "systemd":
        return ["systemctl", "show", "-p", "MainPID", "--value", unit]
    if control.kind == "docker":
        return ["docker", "container", "inspect", "--format", "{{.State.Pid}}", unit]
    return []


def read(
    executor: Executor,
    service: Service,
    host: Host,
    timeout: float,
    known: str = "",
    now: float | None = None,
) -> list[Seen]:
    """What ``service`` on ``host`` shows now (``known``: its unit's process as last seen); a
    failed read raises the transport's error."""
    rel = service.releases
    files = [f.replace("{host}", host.name) for f in service.watch_files]
    argv = ["sh", "-c", _READ, "changes", rel.folder(host.name) if rel else "",
            rel.current if rel else "current", known, str(len(files)), *files,
            *pid_argv(service, host)]  # fmt: skip
    out = executor.run(host, argv, timeout=timeout).stdout
    now = time.time() if now is None else now
    seen = []
    for line in out.splitlines():
        kind, stamp, value, name = [*line.split(" ", 3), "", "", ""][:4]
        if kind in ("release", "file", "start") and stamp.isdigit() and value != "-":
            at = now - float(stamp) if kind == "start" else float(stamp)
            seen.append(Seen(host.name, service.name, kind, name, value, at))
    return seen


def observe(
    executor: Executor, config: Config, timeout: float = 10.0, known: dict[str, str] | None = None
) -> list[Seen]:
    """Every watched value of the fleet, read side by side; a host that cannot be read is
    skipped (logged). ``known``: the values last seen (``last_seen``), by key."""
    known = known or {}
    pairs = watched(config)

    def one(pair: tuple[Service, Host]) -> list[Seen]:
        service, host = pair
        try:
            last = known.get(Seen(host.name, service.name, "start", "unit", "", 0.0).key, "")
            return read(executor, service, host, timeout, last if _PROCESS.match(last) else "")
        except LazarusError as exc:
            log.warning("changes of %s on %s not read: %s", service.name, host.name, exc)
            return []

    if not pairs:
        return []
    with ThreadPoolExecutor(min(READERS, len(pairs))) as pool:
        return [seen for found in pool.map(one, pairs) for seen in found]


def last_seen(store: Store) -> dict[str, str]:
    """The values seen last, by key: what the next read compares with."""
    with store.transaction() as db:
        return dict(db.execute("SELECT key, value FROM change_seen").fetchall())


def record(store: Store, seen: Iterable[Seen], now: float | None = None) -> list[Change]:
    """Store what differs from the last sight as changes; returns the new ones."""
    now = time.time() if now is None else now
    new: list[Change] = []
    with store.transaction() as db:
        for s in seen:
            row = db.execute("SELECT value FROM change_seen WHERE key = ?", (s.key,)).fetchone()
            if row is not None and row[0] != s.value:
                if (ours := _remediated(db, s)) is not None:
                    log.info("%s of %s@%s: Lazarus's (#%d)", s.kind, s.service, s.host, ours)
                else:
                    what, text = _describe(s, row[0])
                    new.append(Change(min(s.mtime or now, now), s.service, what, text, s.host))
            db.execute(
                "INSERT INTO change_seen (key, value) VALUES (?, ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (s.key, s.value),
            )
        for c in new:
            db.execute(
                "INSERT INTO changes (at, host, service, kind, description) VALUES (?, ?, ?, ?, ?)",
                (c.at, c.host, c.service, c.kind, c.description),
            )
        db.execute("DELETE FROM changes WHERE at < ?", (now - KEEP_S,))
    return new


def _describe(s: Seen, before: str) -> tuple[str, str]:
    """The change record's kind and text for ``s``, whose value was ``before``."""
    where = f"{s.service}@{s.host}"
    if s.kind == "release":
        return "release", f"{where}: {s.name} {before} -> {s.value}"
    if s.kind == "file":
        return "file", f"{where}: {s.name} changed (sha256 {s.value})"
    started = time.strftime("%H:%M:%S", time.gmtime(s.mtime))
    pids = f"pid {before.split(':')[0]} -> {s.value.split(':')[0]}"
    return "restart", f"{where}: started at {started} UTC by someone other than Lazarus ({pids})"


def _remediated(db: Any, s: Seen) -> int | None:
    """The incident whose remediation (claimed .. closed) on ``s``'s host or service covers the
    time of ``s``: Lazarus made that change (a restart, a rollback), and its actions say so."""
    row = db.execute(
        "SELECT id FROM incidents WHERE (host = ? OR service = ?) AND action_at IS NOT NULL"
        " AND action_at <= ? AND (closed_at IS NULL OR closed_at >= ?) ORDER BY id DESC LIMIT 1",
        (s.host, s.service, s.mtime + SAME_START_S, s.mtime - SAME_START_S),
    ).fetchone()
    return None if row is None else int(row[0])


def since(store: Store, at: float) -> list[Change]:
    """Changes recorded at or after ``at``, oldest first."""
    with store.transaction() as db:
        rows = db.execute(
            "SELECT at, service, kind, description, host FROM changes WHERE at >= ? ORDER BY at",
            (at,),
        ).fetchall()
    return [Change(float(r[0]), r[1], r[2], r[3], r[4]) for r in rows]
