"""Changes the watch can see on its hosts, recorded so diagnosis can blame them.

Per service and host, one SSH round trip reads what the inventory names: the release its
``releases`` link points to and the link's own mtime (when it was switched), and the hash and
mtime of each ``watch_files`` entry. A value that differs from the one seen last is a change
record (``kind`` ``release`` or ``file``) stamped with that mtime; the first sight of a value is
the baseline, not a change. ``lazarus.diagnose`` ranks ``bad_release`` from them.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass

from lazarus.config import Config, Host, Service
from lazarus.diagnose.evidence import Change
from lazarus.errors import LazarusError
from lazarus.remote import Executor
from lazarus.store import Store

log = logging.getLogger(__name__)
KEEP_S = 7 * 86400.0  # changes older than this are forgotten

# $1 the releases folder ('' = none), $2 its link's name, then the watched files. Constant text:
# paths ride as arguments. Each line: kind, mtime, value, name.
_READ = (
    'if [ -n "$1" ]; then t=$(readlink "$1/$2" || echo -); '
    'printf "release %s %s %s\\n" "$(stat -c %Y "$1/$2" 2>/dev/null || echo 0)" "$t" "$2"; fi; '
    'shift 2; for f in "$@"; do h=$(sha256sum < "$f" 2>/dev/null | cut -c1-16) || h=-; '
    'printf "file %s %s %s\\n" "$(stat -c %Y "$f" 2>/dev/null || echo 0)" "${h:--}" "$f"; done'
)


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
    """The (service, host) pairs that declare something to watch for changes."""
    inv = config.inventory
    return [(s, h) for s in inv.services if s.releases or s.watch_files for h in inv.hosts_of(s)]


def read(executor: Executor, service: Service, host: Host, timeout: float) -> list[Seen]:
    """What ``service`` on ``host`` shows now; a failed read raises the transport's error."""
    rel = service.releases
    argv = ["sh", "-c", _READ, "changes", rel.folder(host.name) if rel else "",
            rel.current if rel else "current",
            *(f.replace("{host}", host.name) for f in service.watch_files)]  # fmt: skip
    out = executor.run(host, argv, timeout=timeout).stdout
    seen = []
    for line in out.splitlines():
        kind, mtime, value, name = [*line.split(" ", 3), "", "", ""][:4]
        if kind in ("release", "file") and mtime.isdigit() and value != "-":
            seen.append(Seen(host.name, service.name, kind, name, value, float(mtime)))
    return seen


def observe(executor: Executor, config: Config, timeout: float = 10.0) -> list[Seen]:
    """Every watched value of the fleet; a host that cannot be read is skipped (logged)."""
    seen: list[Seen] = []
    for service, host in watched(config):
        try:
            seen += read(executor, service, host, timeout)
        except LazarusError as exc:
            log.warning("changes of %s on %s not read: %s", service.name, host.name, exc)
    return seen


def record(store: Store, seen: Iterable[Seen], now: float | None = None) -> list[Change]:
    """Store what differs from the last sight as changes; returns the new ones."""
    now = time.time() if now is None else now
    new: list[Change] = []
    with store.transaction() as db:
        for s in seen:
            row = db.execute("SELECT value FROM change_seen WHERE key = ?", (s.key,)).fetchone()
            if row is not None and row[0] != s.value:
                what = "release" if s.kind == "release" else "file"
                text = (
                    f"{s.service}@{s.host}: {s.name} {row[0]} -> {s.value}"
                    if what == "release"
                    else f"{s.service}@{s.host}: {s.name} changed (sha256 {s.value})"
                )
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


def since(store: Store, at: float) -> list[Change]:
    """Changes recorded at or after ``at``, oldest first."""
    with store.transaction() as db:
        rows = db.execute(
            "SELECT at, service, kind, description, host FROM changes WHERE at >= ? ORDER BY at",
            (at,),
        ).fetchall()
    return [Change(float(r[0]), r[1], r[2], r[3], r[4]) for r in rows]
