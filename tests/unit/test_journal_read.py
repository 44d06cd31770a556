"""journalctl with a cursor on a real journal (written by systemd-journal-remote): each entry
read once, the entry budget and the byte cap, a lost cursor, levels, multi-line and binary
messages. Commands run on this machine through a subprocess executor (no SSH here: the e2e test
runs the same reader over the sandbox's sshd)."""

from __future__ import annotations

import shutil
import struct
import subprocess
import time
from collections.abc import Sequence
from contextlib import closing
from pathlib import Path

import pytest

from lazarus.config import Host, LogSettings
from lazarus.logcollect import JournalCursors, JournalReader, LogReadError, read_journal
from lazarus.model import CommandResult
from lazarus.store import Store

JOURNAL_REMOTE = Path("/lib/systemd/systemd-journal-remote")
needs_journal = pytest.mark.skipif(
    not (shutil.which("journalctl") and JOURNAL_REMOTE.exists()),
    reason="needs journalctl and systemd-journal-remote (apt-get install systemd-journal-remote)",
)
BOOT = "0123456789abcdef0123456789abcdef"


def _field(name: str, value: str | bytes) -> bytes:
    """One field in Journal Export Format: text as ``NAME=value``, else length-prefixed."""
    data = value.encode() if isinstance(value, str) else value
    if b"\n" in data or isinstance(value, bytes):
        return name.encode() + b"\n" + struct.pack("<Q", len(data)) + data + b"\n"
    return f"{name}={value}\n".encode()


def write_entries(
    directory: Path, messages: Sequence[str | bytes], unit: str = "web.service", priority: int = 6
) -> None:
    """Append entries of ``unit`` to ``directory``/remote.journal, as journald would store them."""
    directory.mkdir(parents=True, exist_ok=True)
    now = time.time_ns() // 1000
    export = b""
    for i, message in enumerate(messages):
        fields = {
            "__REALTIME_TIMESTAMP": str(now + i),
            "__MONOTONIC_TIMESTAMP": str(now + i),
            "_BOOT_ID": BOOT,
            "_SYSTEMD_UNIT": unit,
            "SYSLOG_IDENTIFIER": unit.split(".")[0],
            "PRIORITY": str(priority),
            "_HOSTNAME": "web-1",
        }
        export += b"".join(_field(k, v) for k, v in fields.items())
        export += _field("MESSAGE", message) + b"\n"
    journal = directory / "remote.journal"
    subprocess.run(
        [str(JOURNAL_REMOTE), f"--output={journal}", "-"],
        input=export,
        check=True,
        capture_output=True,
        timeout=30,
    )
    directory.chmod(0o755)
    journal.chmod(0o644)  # for the sandbox's SSH user


class LocalExecutor:
    """Runs argv here (the Executor protocol), with an output cap as SSH's."""

    def __init__(self, output_limit: int = 1 << 20):
        self.output_limit = output_limit
        self.commands: list[list[str]] = []

    def run(self, host: Host, argv: Sequence[str], *, timeout: float | None = None):
        self.commands.append(list(argv))
        done = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout or 30)
        out = done.stdout
        return CommandResult(
            host=host.name,
            command=" ".join(argv),
            exit_code=done.returncode,
            stdout=out[: self.output_limit],
            stderr=done.stderr,
            duration_s=0.0,
            truncated=len(out) > self.output_limit,
        )

    def close(self) -> None:
        pass


HOST = Host(name="web-1", address="127.0.0.1")


def reader(directory: Path, executor: LocalExecutor | None = None, unit: str = "web.service"):
    return JournalReader(executor or LocalExecutor(), HOST, unit, directory=str(directory))


@needs_journal
def test_two_batches_are_read_once_each_and_the_cursor_keeps_its_place(tmp_path: Path) -> None:
    write_entries(tmp_path, ["history 1", "history 2"])
    write_entries(tmp_path, ["other unit"], unit="db.service")
    journal = reader(tmp_path)
    first = read_journal(journal, None, lines=100, max_line=4096)  # start: end
    assert first.lines == [] and first.cursor and not first.restarted
    write_entries(tmp_path, ["batch 1 a", "batch 1 b"])
    one = read_journal(journal, first.cursor, lines=100, max_line=4096)
    assert one.lines == ["INFO batch 1 a", "INFO batch 1 b"] and not one.behind
    write_entries(tmp_path, ["batch 2 a"], priority=3)
    write_entries(tmp_path, ["not ours"], unit="db.service")
    two = read_journal(journal, one.cursor, lines=100, max_line=4096)
    assert two.lines == ["ERROR batch 2 a"]
    idle = read_journal(journal, two.cursor, lines=100, max_line=4096)
    assert idle.lines == [] and idle.cursor == two.cursor and not idle.restarted


@needs_journal
def test_every_argument_is_its_own_word(tmp_path: Path) -> None:
    executor = LocalExecutor()
    journal = reader(tmp_path, executor)
    write_entries(tmp_path, ["x"])
    read_journal(journal, None, lines=5, max_line=64)
    assert executor.commands[-1] == [
        "journalctl",
        "--unit=web.service",
        "--no-pager",
        "--quiet",
        "--output=json",
        "--output-fields=MESSAGE,PRIORITY",
        f"--directory={tmp_path}",
        "--lines=1",
    ]


@needs_journal
def test_beginning_and_the_entry_budget_continue_next_cycle(tmp_path: Path) -> None:
    write_entries(tmp_path, [f"entry {i}" for i in range(7)])
    journal = reader(tmp_path)
    seen: list[str] = []
    cursor = None
    behind = []
    for _ in range(5):
        result = read_journal(journal, cursor, lines=3, max_line=4096, start="beginning")
        seen, cursor, behind = seen + result.lines, result.cursor, [*behind, result.behind]
    assert seen == [f"INFO entry {i}" for i in range(7)]
    assert behind[:2] == [True, True] and behind[-1] is False


@needs_journal
def test_the_byte_cap_ends_on_a_complete_entry_and_loses_none(tmp_path: Path) -> None:
    write_entries(tmp_path, [f"entry {i} {'x' * 200}" for i in range(20)])
    journal = reader(tmp_path, LocalExecutor(output_limit=2000))  # ~5 entries of JSON
    seen: list[str] = []
    cursor = None
    for _ in range(10):
        result = read_journal(journal, cursor, lines=100, max_line=4096, start="beginning")
        seen, cursor = seen + result.lines, result.cursor
        if not result.behind:
            break
    assert [line.split()[2] for line in seen] == [str(i) for i in range(20)]


@needs_journal
def test_a_lost_cursor_starts_again_from_the_last_entries(tmp_path: Path) -> None:
    write_entries(tmp_path, ["before"])
    journal = reader(tmp_path)
    cursor = read_journal(journal, None, lines=2, max_line=4096).cursor
    (tmp_path / "remote.journal").unlink()  # vacuumed; journald starts a new file
    write_entries(tmp_path, ["after 1", "after 2", "after 3"])
    result = read_journal(journal, cursor, lines=2, max_line=4096)
    assert "cursor not found" in result.restarted and "last 2 entries" in result.restarted
    assert result.lines == ["INFO after 2", "INFO after 3"]
    again = read_journal(journal, result.cursor, lines=2, max_line=4096)
    assert again.lines == [] and not again.restarted
    garbled = read_journal(journal, "not a cursor", lines=2, max_line=4096)
    assert garbled.restarted and garbled.lines == ["INFO after 2", "INFO after 3"]


@needs_journal
def test_an_empty_journal_is_read_from_its_beginning_once_it_has_entries(tmp_path: Path) -> None:
    write_entries(tmp_path, ["someone else"], unit="db.service")
    journal = reader(tmp_path)
    first = read_journal(journal, None, lines=10, max_line=4096)
    assert first.cursor == "" and first.lines == []
    write_entries(tmp_path, ["first words"])
    assert read_journal(journal, first.cursor, lines=10, max_line=4096).lines == [
        "INFO first words"
    ]


@needs_journal
def test_multi_line_binary_and_long_messages(tmp_path: Path) -> None:
    traceback = "Traceback (most recent call last):\n  File app.py\nValueError: bad"
    long = "L" * 5000  # above journalctl's 4096-byte field cap: null in JSON
    write_entries(tmp_path, [traceback, b"bytes \xff\x1b[31mred\x1b[0m", "M" * 300, long])
    result = read_journal(reader(tmp_path), "", lines=10, max_line=100)
    assert result.lines[:3] == [
        "INFO Traceback (most recent call last):",
        "INFO   File app.py",
        "INFO ValueError: bad",
    ]
    assert result.lines[3] == "INFO bytes \ufffdred"
    assert result.lines[4] == "INFO " + "M" * 100
    assert len(result.lines) == 5 and result.cut == 2


@needs_journal
def test_a_journal_that_cannot_be_read_raises_a_log_read_error(tmp_path: Path) -> None:
    with pytest.raises(LogReadError, match=r"journalctl --unit=web\.service"):
        read_journal(reader(tmp_path / "missing"), "", lines=10, max_line=4096)


def test_cursors_are_kept_per_host_and_unit(tmp_path: Path) -> None:
    with closing(Store(tmp_path / "s.db")) as store:
        cursors = JournalCursors(store)
        assert cursors.get("web-1", "web.service") is None
        cursors.save("web-1", "web.service", "s=1", False, 1.0)
        cursors.fail("web-1", "web.service", "timeout", 2.0)
        cursors.save("web-1", "web.service", "s=2", True, 3.0)
        cursors.save("web-2", "web.service", "", False, 3.0)
    with closing(Store(tmp_path / "s.db")) as store:
        rows = {(s.host, s.unit): s for s in JournalCursors(store).status()}
    assert rows[("web-1", "web.service")].cursor == "s=2"
    assert (
        rows[("web-1", "web.service")].restarts == 1 and rows[("web-1", "web.service")].error == ""
    )
    assert rows[("web-2", "web.service")].cursor == ""


def test_journal_config() -> None:
    settings = LogSettings(journals=[{"service": "web", "unit": "web.service"}])
    assert settings.journals[0].start == "end" and settings.journals[0].lines == 1000
    with pytest.raises(ValueError, match=r"journals\.0\.unit"):
        LogSettings(journals=[{"service": "web", "unit": "web; rm -rf /"}])
