"""Read what a systemd unit logged since the last cycle: journalctl with a cursor, over SSH.

The cursor names the last entry read. Each cycle is one call,
``journalctl --unit=U --cursor=C -n N+1 -o json`` (every argument its own quoted word): the
first entry printed must be C's own, and the N after it are new. Asking for C itself rather
than ``--after-cursor`` is how a lost cursor shows: journalctl seeks a cursor whose entry is
gone (the journal was vacuumed, the machine's journal replaced) to the nearest entry *in time*
without a word, so the first entry's cursor differs, or a malformed one fails to seek. Then
reading starts again from the last ``N`` entries, and the result says so.

JSON rather than ``short-iso --show-cursor``: every entry carries its own ``__CURSOR``, so an
answer cut by the SSH output cap (the byte budget) still ends on a known entry, the priority
becomes the line's level (``ERROR …``) for the miner, and a multi-line message stays one entry.
A field above 4096 bytes comes as null (journalctl's own cap without ``--all``): such a message
is counted as cut, not read.

A unit seen for the first time is read from its end (``start: end``: the newest entry's cursor
is taken, nothing is read) or from its oldest entry (``start: beginning``); a journal without
entries for the unit yet is read from its beginning once it has some.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Literal

from lazarus.config import Host
from lazarus.logcollect.tail import LogReadError
from lazarus.logmine import sanitize
from lazarus.remote import Executor

FORMAT = "<Level> <Content>"  # how each line is built from an entry
LEVELS = ("EMERG", "ALERT", "CRIT", "ERROR", "WARNING", "NOTICE", "INFO", "DEBUG")
START = ""  # the cursor of a journal read from its oldest entry


@dataclass
class JournalResult:
    """One cycle of one unit: where the next resumes (``START``: the oldest entry), the lines,
    and why reading started again (empty when the cursor held)."""

    cursor: str
    lines: list[str] = field(default_factory=list)
    read: int = 0
    cut: int = 0
    behind: bool = False
    restarted: str = ""


@dataclass(frozen=True)
class _Entry:
    cursor: str
    level: str
    message: str | None


class JournalReader:
    """journalctl for one unit on one host, through an executor."""

    def __init__(
        self,
        executor: Executor,
        host: Host,
        unit: str,
        *,
        directory: str | None = None,
        timeout: float | None = None,
    ):
        self.executor, self.host, self.unit = executor, host, unit
        self.directory, self.timeout = directory, timeout

    def argv(self, *options: str) -> list[str]:
        """The journalctl command line: the unit's entries as JSON, ``options`` added."""
        argv = ["journalctl", f"--unit={self.unit}", "--no-pager", "--quiet", "--output=json"]
        argv.append("--output-fields=MESSAGE,PRIORITY")  # __CURSOR always comes with them
        if self.directory:
            argv.append(f"--directory={self.directory}")
        return argv + list(options)

    def entries(self, *options: str) -> tuple[list[_Entry], int, bool]:
        """The entries ``options`` select, bytes read, and whether the output cap cut them."""
        result = self.executor.run(self.host, self.argv(*options), timeout=self.timeout)
        if not result.ok:
            reason = result.stderr.strip().splitlines()[-1:] or [f"exit {result.exit_code}"]
            raise LogReadError(f"{self.host.name}: journalctl --unit={self.unit}: {reason[0]}")
        text = result.stdout
        complete = text if not result.truncated else text[: text.rfind("\n") + 1]
        return (
            [_entry(line) for line in complete.splitlines() if line.strip()],
            len(text.encode()),
            result.truncated,
        )


def read_journal(
    reader: JournalReader,
    cursor: str | None,
    *,
    lines: int,
    max_line: int,
    start: Literal["end", "beginning"] = "end",
) -> JournalResult:
    """What the unit logged after ``cursor`` (None: first sighting, read from ``start``)."""
    if cursor is None and start == "end":
        newest, read, _ = reader.entries("--lines=1")
        return JournalResult(newest[-1].cursor if newest else START, read=read)
    if not cursor:
        return _result(*reader.entries("--since=@0", f"--lines={lines}"), lines, max_line)
    try:
        found, read, cut_off = reader.entries(f"--cursor={cursor}", f"--lines={lines + 1}")
    except LogReadError as exc:
        if "to cursor" not in str(exc):  # "Failed to seek to cursor: Invalid argument"
            raise
        found, read, cut_off = [], 0, False  # a cursor journalctl cannot even parse
    if found and found[0].cursor == cursor:
        return _result(found[1:], read, cut_off, lines, max_line, cursor)
    result = _result(*reader.entries(f"--lines={lines}"), lines, max_line)
    result.read += read
    result.restarted = (
        f"cursor not found in the journal of {reader.unit} (vacuumed or replaced): "
        f"read again from its last {lines} entries"
    )
    return result


def _result(
    entries: list[_Entry],
    read: int,
    cut_off: bool,
    lines: int,
    max_line: int,
    cursor: str = START,
) -> JournalResult:
    result = JournalResult(entries[-1].cursor if entries else cursor, read=read)
    result.behind = cut_off or len(entries) >= lines
    for entry in entries:
        if entry.message is None:
            result.cut += 1
            continue
        for text in entry.message.splitlines():
            text = sanitize(text)
            if len(text) > max_line:
                text, result.cut = text[:max_line], result.cut + 1
            if text.strip():
                result.lines.append(f"{entry.level} {text}")
    return result


def _entry(line: str) -> _Entry:
    """One line of ``journalctl -o json``: a string, an array of bytes (not UTF-8) or null."""
    try:
        data = json.loads(line)
        cursor = data["__CURSOR"]
    except (ValueError, KeyError, TypeError) as exc:
        raise LogReadError(f"unexpected journalctl output: {line[:80]!r}") from exc
    message = data.get("MESSAGE")
    if isinstance(message, list):
        message = bytes(b & 0xFF for b in message if isinstance(b, int)).decode("utf-8", "replace")
    priority = str(data.get("PRIORITY", "6"))
    level = LEVELS[int(priority)] if priority.isdigit() and int(priority) < len(LEVELS) else "INFO"
    return _Entry(str(cursor), level, message if isinstance(message, str) else None)
