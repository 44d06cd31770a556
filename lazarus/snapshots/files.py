"""What every database kind shares: snapshot files (naming, sidecars, listing, retention),
the report types, and the verdict on whether restored data looks sane.

A snapshot is two files: ``<db>-<UTC timestamp><suffix>`` and its sidecar ``<that>.json``
(when, how big, sha256, server version, row counts). Both appear by rename from a temporary
name, so a reader never sees half a snapshot; one without a sidecar is not listed at all.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from lazarus.errors import ActionError, VerifyFailed

_STAMP = "%Y%m%dT%H%M%S.%fZ"
# scheduled: a candidate for restore once verified good; safety: the state a restore replaced;
# damaged: kept while an incident is open (never a candidate); pitr: a point-in-time copy
Reason = Literal["scheduled", "safety", "damaged", "pitr"]


class Snapshot(BaseModel):
    """One snapshot file and what its sidecar records about it."""

    model_config = ConfigDict(frozen=True)

    path: Path
    database: str
    kind: Literal["postgres", "sqlite"]
    created_at: datetime
    size: int
    sha256: str
    server_version: str
    row_counts: dict[str, int | None] = {}
    reason: Reason = "scheduled"
    verdict: Literal["good", "bad"] | None = None  # from verification on a scratch copy
    verdict_detail: str = ""

    @property
    def sidecar(self) -> Path:
        return sidecar_of(self.path)

    @property
    def candidate(self) -> bool:
        """Whether a restore may use it: taken on schedule (never of damaged data) and good."""
        return self.reason == "scheduled" and self.verdict == "good"


class RestoreReport(BaseModel):
    """What a restore did, for the audit trail: steps, row counts, where the old data is kept."""

    model_config = ConfigDict(frozen=True)

    database: str
    snapshot: Path
    safety_snapshot: Path
    steps: list[str]
    row_counts_before: dict[str, int | None]
    row_counts_after: dict[str, int | None]
    kept_as: str | None = None
    tried: list[str] = []  # candidates refused before this one, each with why
    seconds: float


def sidecar_of(path: Path) -> Path:
    return path.with_name(path.name + ".json")


def new_path(snapshot_dir: Path, database: str, suffix: str) -> Path:
    """Where the next snapshot of ``database`` goes; the folder is made private if new."""
    snapshot_dir = Path(snapshot_dir)
    snapshot_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    return snapshot_dir / f"{database}-{datetime.now(UTC).strftime(_STAMP)}{suffix}"


def partial_of(path: Path) -> Path:
    """The hidden temporary name a snapshot is written under before it is published."""
    return path.with_name(f".{path.name}.partial")


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def publish(partial: Path, path: Path, **fields: object) -> Snapshot:
    """Make a finished temporary file a snapshot: fsync, rename, then write its sidecar."""
    os.chmod(partial, 0o600)
    _fsync(partial)
    os.replace(partial, path)
    info = Snapshot(
        path=path,
        created_at=datetime.now(UTC),
        size=path.stat().st_size,
        sha256=sha256_of(path),
        **fields,
    )
    _write_sidecar(info)
    return info


def mark(snapshot: Snapshot, verdict: Literal["good", "bad"], detail: str = "") -> Snapshot:
    """Record what verification on a scratch copy found, in the sidecar (atomically)."""
    marked = snapshot.model_copy(update={"verdict": verdict, "verdict_detail": detail})
    _write_sidecar(marked)
    return marked


def _write_sidecar(info: Snapshot) -> None:
    side = sidecar_of(info.path)
    tmp = partial_of(side)
    tmp.write_text(info.model_dump_json(exclude={"path"}, indent=2))
    _fsync(tmp)
    os.replace(tmp, side)
    _fsync(info.path.parent)


def load(snapshot: Snapshot | Path, step: str = "db.verify") -> Snapshot:
    """The snapshot a path names, read from its sidecar; a missing/garbled sidecar is refused."""
    if isinstance(snapshot, Snapshot):
        return snapshot
    path = Path(snapshot)
    try:
        return Snapshot.model_validate({**json.loads(sidecar_of(path).read_text()), "path": path})
    except OSError as exc:
        raise ActionError(step, f"snapshot {path}: no readable sidecar ({exc.strerror})") from None
    except (ValueError, TypeError, ValidationError):
        raise ActionError(step, f"snapshot {path}: its sidecar is not valid") from None


def check_digest(snapshot: Snapshot, step: str = "db.verify") -> None:
    """Refuse a snapshot whose file is missing, truncated or altered since it was taken."""
    path = snapshot.path
    if not path.is_file():
        raise ActionError(step, f"snapshot {path} does not exist")
    if path.stat().st_size != snapshot.size:
        raise ActionError(
            step,
            f"snapshot {path} is {path.stat().st_size} bytes, "
            f"{snapshot.size} were written: truncated or replaced",
        )
    if sha256_of(path) != snapshot.sha256:
        raise ActionError(step, f"snapshot {path}: sha256 differs from its sidecar (altered)")


def list_snapshots(snapshot_dir: Path, database: str) -> list[Snapshot]:
    """Complete snapshots of ``database`` in ``snapshot_dir``, newest first."""
    found = []
    for side in Path(snapshot_dir).glob(f"{_glob_escape(database)}-*.json"):
        path = side.with_name(side.name.removesuffix(".json"))
        try:
            found.append(load(path))
        except ActionError:
            continue  # a foreign or damaged file: never counted, never pruned
    found = [s for s in found if s.database == database]
    return sorted(found, key=lambda s: s.created_at, reverse=True)


def prune(
    snapshot_dir: Path,
    database: str,
    keep: int,
    *,
    daily: int = 0,
    weekly: int = 0,
    now: datetime | None = None,
    grace: float = 3600.0,
) -> list[Path]:
    """Apply retention to ``database``'s snapshots; return what was deleted.

    Restore candidates keep the ``keep`` newest, plus the newest of each of the last ``daily``
    days and ``weekly`` ISO weeks. Other snapshots (bad, unverified, safety, damaged, pitr)
    keep the ``keep`` newest of each reason. Leftovers of a killed snapshot or restore (a
    ``.partial`` file, a snapshot file without its sidecar) go once ``grace`` seconds old.
    """
    if keep < 1:
        raise ValueError("retention must keep at least one snapshot")
    now = now or datetime.now(UTC)
    snaps = list_snapshots(snapshot_dir, database)
    good = [s for s in snaps if s.candidate]
    kept = {s.path for s in good[:keep]}
    kept |= _newest_per(good, lambda s: s.created_at.date().isoformat(), daily)
    kept |= _newest_per(good, lambda s: "{}-W{:02d}".format(*s.created_at.isocalendar()), weekly)
    for reason in ("scheduled", "safety", "damaged", "pitr"):
        others = [s for s in snaps if not s.candidate and s.reason == reason]
        kept |= {s.path for s in others[:keep]}
    removed = []
    for old in snaps:
        if old.path not in kept:
            old.path.unlink(missing_ok=True)
            old.sidecar.unlink(missing_ok=True)
            removed.append(old.path)
    return removed + _leftovers(Path(snapshot_dir), database, now.timestamp() - grace)


def _newest_per(snaps: list[Snapshot], period, count: int) -> set[Path]:
    """The newest snapshot of each of the ``count`` most recent periods that have one."""
    newest: dict[str, Path] = {}
    for snap in snaps:  # newest first
        newest.setdefault(period(snap), snap.path)
    return set(list(newest.values())[:count])


def _leftovers(snapshot_dir: Path, database: str, older_than: float) -> list[Path]:
    """Delete ``.partial`` files and sidecar-less snapshot files older than ``older_than``."""
    ours = re.compile(rf"^\.?{re.escape(database)}-\d{{8}}T\d{{6}}\.\d{{6}}Z")
    found = [
        p
        for p in snapshot_dir.glob("*")
        if ours.match(p.name)
        and p.is_file()
        and (p.name.endswith(".partial") or (p.suffix != ".json" and not sidecar_of(p).exists()))
    ]
    removed = []
    for path in found:
        try:
            if path.stat().st_mtime < older_than:
                path.unlink()
                removed.append(path)
        except FileNotFoundError:
            continue
    return removed


def require_sane(
    where: str, counts: dict[str, int | None], check: str | None, answer: tuple | None
) -> None:
    """Raise VerifyFailed unless every counted table has rows and the SQL check said yes."""
    empty = [t for t, n in counts.items() if not n]
    if empty:
        raise VerifyFailed(f"{where}: table(s) {', '.join(empty)} missing or empty")
    if check is not None and not (answer and answer[0]):
        got = repr(answer[0]) if answer else "no row"
        raise VerifyFailed(f"{where}: check {check!r} returned {got}")


def discard(path: Path) -> None:
    """Remove a temporary file left by a failed snapshot."""
    path.unlink(missing_ok=True)


def _glob_escape(text: str) -> str:
    return "".join(f"[{c}]" if c in "*?[" else c for c in text)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
