"""Journal collection over the sandbox's real sshd: journalctl with a cursor per (host, unit),
each batch read exactly once, and a vacuumed journal starting again without failing the cycle.

The sandbox hosts run no journald, so the journal is written by systemd-journal-remote into a
directory every host can read (``logs.journals[].directory``, journalctl --directory)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest

from lazarus.config import Config, LogSettings
from lazarus.logcollect import JournalCursors, LogBatch, collect
from lazarus.store import Store
from tests.unit.test_journal_read import needs_journal, write_entries

pytestmark = [pytest.mark.e2e, needs_journal]

HOSTS = ("web-1", "web-2", "web-3")


@pytest.fixture
def journal_dir(tmp_path: Path) -> Path:
    tmp_path.chmod(0o755)  # the sandbox's SSH user reads it
    write_entries(tmp_path / "journal", ["history before lazarus"])
    return tmp_path / "journal"


@pytest.fixture
def cycle(config: Config, tmp_path: Path, journal_dir: Path) -> Iterator:
    spec = {"service": "web", "unit": "web.service", "directory": str(journal_dir), "lines": 4}
    settings = LogSettings.model_validate({"journals": [spec]})
    cfg = config.model_copy(update={"logs": settings})
    with closing(Store(tmp_path / "state.db")) as store:

        def run() -> LogBatch:
            return collect(cfg, store)

        run.store = store  # type: ignore[attr-defined]
        yield run


def test_each_batch_is_read_exactly_once_on_every_host(cycle, journal_dir: Path) -> None:
    first = cycle()
    assert first.errors == [] and all(f.lines == [] for f in first.files)  # starts at the end
    assert {f.path for f in first.files} == {"journal:web.service"}
    write_entries(journal_dir, ["GET /health 200", "cache warm"])
    write_entries(journal_dir, ["db connection refused"], priority=3)
    write_entries(journal_dir, ["someone else's"], unit="db.service")
    one = cycle()
    for host in HOSTS:
        assert one.lines(host, "web") == [
            "INFO GET /health 200",
            "INFO cache warm",
            "ERROR db connection refused",
        ]
    write_entries(journal_dir, [f"batch 2 entry {i}" for i in range(6)])
    two, three = cycle(), cycle()  # 6 entries at 4 a cycle
    for host in HOSTS:
        assert two.lines(host, "web") + three.lines(host, "web") == [
            f"INFO batch 2 entry {i}" for i in range(6)
        ]
    assert all(f.behind for f in two.files) and not any(f.behind for f in three.files)
    assert all(f.lines == [] for f in cycle().files)
    rows = JournalCursors(cycle.store).status()
    assert {r.host for r in rows} == set(HOSTS) and all(r.cursor and not r.error for r in rows)


def test_a_vacuumed_journal_starts_again_and_says_so(cycle, journal_dir: Path) -> None:
    cycle()
    write_entries(journal_dir, ["before the vacuum"])
    assert cycle().lines("web-1", "web") == ["INFO before the vacuum"]
    (journal_dir / "remote.journal").unlink()
    write_entries(journal_dir, [f"after {i}" for i in range(6)])
    batch = cycle()
    assert batch.errors == []
    for f in batch.files:
        assert "cursor not found" in f.restarted and "last 4 entries" in f.restarted
        assert f.lines == [f"INFO after {i}" for i in (2, 3, 4, 5)]
    write_entries(journal_dir, ["after the restart"])
    again = cycle()
    assert all(f.lines == ["INFO after the restart"] and not f.restarted for f in again.files)
    assert all(r.restarts == 1 for r in JournalCursors(cycle.store).status())


def test_an_unreadable_journal_is_recorded_and_the_cursor_kept(cycle, journal_dir: Path) -> None:
    cycle()
    write_entries(journal_dir, ["kept for later"])
    moved = journal_dir.rename(journal_dir.with_name("moved"))  # gone for one cycle
    try:
        failed = cycle()
    finally:
        moved.rename(journal_dir)
    assert {f.host for f in failed.errors} == set(HOSTS)
    assert all("journalctl --unit=web.service" in f.error for f in failed.errors)
    assert all(r.error for r in JournalCursors(cycle.store).status())
    healed = cycle()
    assert all(f.lines == ["INFO kept for later"] and not f.restarted for f in healed.files)
