"""Read what a log file gained since the last cycle, on a host over SSH or on this machine.

A :class:`Cursor` (inode, offset, skipping) says where the last cycle stopped. Each cycle one
:class:`Reader` call reports the file's inode and size and returns the bytes from that offset;
:func:`tail_file` decides what they mean:

- inode changed: the file was rotated (``mv`` + a new file): what the old file got since the
  last read is taken from ``<path>.1`` when it sits there, and the new one is read from 0;
- size below the offset: the file was truncated in place, it is read from 0;
- only complete lines advance the offset, so a line being written is read whole next cycle;
  a line longer than ``max_line`` is cut, counted, and the rest of it skipped up to its end;
- at most ``budget`` bytes are read per cycle; the next cycle continues where this one stopped.

Lines are decoded with replacement (binary garbage costs nothing) and stripped of ANSI escapes.
The remote side is one fixed ``sh`` script: the path, offset and size ride as separate quoted
argv entries, never inside the script, and the bytes come back as base64 because SSH output is
decoded as text on arrival.
"""

from __future__ import annotations

import base64
import binascii
import os
from dataclasses import dataclass, field, replace
from typing import Literal, Protocol

from lazarus.config import Host
from lazarus.errors import LazarusError
from lazarus.logmine import sanitize
from lazarus.remote import Executor

# $1 path, $2 offset, $3 bytes at most. The file is opened once, so the inode and size
# printed are those of the file the bytes come from, even when it is rotated meanwhile.
REMOTE_SCRIPT = (
    'exec 3<"$1" || exit 66\n'
    '[ -f /dev/fd/3 ] || { echo "$1: not a regular file" >&2; exit 66; }\n'
    "stat -L -c '%i %s' /dev/fd/3 || exit 66\n"
    'dd bs=65536 skip="$2" count="$3" iflag=skip_bytes,count_bytes status=none <&3 | base64 -w 0\n'
)
# Room for the "inode size" line in front of the base64 text.
_HEADER_ROOM = 64
# A cycle never spends more reads than this, whatever the budget.
MAX_READS = 64


class LogReadError(LazarusError):
    """A log file could not be read this cycle (missing, unreadable, garbled answer)."""


@dataclass(frozen=True)
class Chunk:
    """What one read saw: the open file's inode and size, and bytes from the asked offset."""

    inode: int
    size: int
    data: bytes


class Reader(Protocol):
    """Reads a byte range of a file together with the file's identity."""

    @property
    def max_read(self) -> int:
        """The most bytes one :meth:`read` may be asked for."""
        ...

    def read(self, path: str, offset: int, limit: int) -> Chunk: ...


class LocalReader:
    """Files on the machine Lazarus runs on."""

    max_read = 1 << 20

    def read(self, path: str, offset: int, limit: int) -> Chunk:
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError as exc:
            raise LogReadError(f"cannot open {path}: {exc.strerror or exc}") from exc
        try:
            st = os.fstat(fd)
            return Chunk(st.st_ino, st.st_size, os.pread(fd, limit, offset))
        finally:
            os.close(fd)


class SshReader:
    """Files on one host, through :data:`REMOTE_SCRIPT` on an executor."""

    def __init__(self, executor: Executor, host: Host, output_limit: int, timeout: float):
        self.executor, self.host, self.timeout = executor, host, timeout
        self.max_read = (output_limit - _HEADER_ROOM) // 4 * 3  # base64: 3 bytes -> 4 chars

    def read(self, path: str, offset: int, limit: int) -> Chunk:
        argv = ["sh", "-c", REMOTE_SCRIPT, "lazarus-tail", path, str(offset), str(limit)]
        result = self.executor.run(self.host, argv, timeout=self.timeout)
        if not result.ok:
            reason = result.stderr.strip().splitlines()[-1:] or [f"exit {result.exit_code}"]
            raise LogReadError(f"{self.host.name}: cannot read {path}: {reason[0]}")
        if result.truncated:
            raise LogReadError(f"{self.host.name}: the answer for {path} was cut by output_limit")
        return parse_output(result.stdout)


def output_limit_for(budget: int) -> int:
    """The SSH output cap that lets one read carry a whole cycle's ``budget``."""
    return -(-budget // 3) * 4 + _HEADER_ROOM


def parse_output(stdout: str) -> Chunk:
    """The remote script's answer: ``"<inode> <size>\\n"`` then the bytes as base64."""
    header, newline, body = stdout.partition("\n")
    parts = header.split()
    if not newline or len(parts) != 2 or not all(p.isdigit() for p in parts):
        raise LogReadError(f"unexpected answer from the tail script: {header[:80]!r}")
    try:
        data = base64.b64decode(body.strip(), validate=True)
    except binascii.Error as exc:
        raise LogReadError(f"the tail script sent invalid base64: {exc}") from exc
    return Chunk(int(parts[0]), int(parts[1]), data)


@dataclass(frozen=True)
class Split:
    """Lines found in a run of bytes and how many bytes they used up."""

    lines: list[str]
    consumed: int
    cut: int
    skipping: bool


def split_lines(data: bytes, max_line: int, skipping: bool = False) -> Split:
    """Complete lines of ``data``; a partial last line is left unconsumed unless it is too long.

    ``skipping`` says ``data`` starts inside a line that was already cut: its bytes up to the
    next newline are dropped.
    """
    lines: list[str] = []
    cut = pos = 0
    while (end := data.find(b"\n", pos)) >= 0:
        raw, pos = data[pos:end], end + 1
        if skipping:
            skipping = False
            continue
        raw = raw.removesuffix(b"\r")
        if len(raw) > max_line:
            raw, cut = raw[:max_line], cut + 1
        _append(lines, raw)
    if skipping:
        pos = len(data)
    elif len(data) - pos > max_line:
        _append(lines, data[pos : pos + max_line])
        cut, skipping, pos = cut + 1, True, len(data)
    return Split(lines, pos, cut, skipping)


def _append(lines: list[str], raw: bytes) -> None:
    text = sanitize(raw.decode("utf-8", "replace"))
    if text.strip():
        lines.append(text)


@dataclass(frozen=True)
class Cursor:
    """Where reading a file resumes: its inode, the byte offset, and whether mid-cut-line."""

    inode: int
    offset: int
    skipping: bool = False


@dataclass
class TailResult:
    """One cycle of one file."""

    cursor: Cursor
    lines: list[str] = field(default_factory=list)
    read: int = 0
    cut: int = 0
    rotated: bool = False
    truncated: bool = False
    behind: bool = False


def tail_file(
    reader: Reader,
    path: str,
    cursor: Cursor | None,
    *,
    budget: int,
    max_line: int,
    start: Literal["end", "beginning"] = "end",
) -> TailResult:
    """Read what ``path`` gained since ``cursor`` (None: first sighting, read from ``start``)."""
    max_line = min(max_line, reader.max_read - 1)  # a cut line must fit in one read
    if cursor is None:
        first = reader.read(path, 0, 0)
        if start == "end":
            return TailResult(Cursor(first.inode, first.size))
        cursor = Cursor(first.inode, 0)
    result = TailResult(cursor)
    for _ in range(MAX_READS):
        ask = min(reader.max_read, budget - result.read)
        if ask <= 0:
            result.behind = True
            break
        chunk = reader.read(path, cursor.offset, ask)
        result.read += len(chunk.data)
        if chunk.inode != cursor.inode or chunk.size < cursor.offset:
            if chunk.inode != cursor.inode:
                result.rotated = True
                _finish_rotated(reader, path, cursor, max_line, budget, result)
            else:
                result.truncated = True
            stale, cursor = cursor.offset, Cursor(chunk.inode, 0)
            if stale:
                continue  # these bytes came from the old offset of another file
        split = split_lines(chunk.data, max_line, cursor.skipping)
        result.lines += split.lines
        result.cut += split.cut
        cursor = replace(cursor, offset=cursor.offset + split.consumed, skipping=split.skipping)
        if len(chunk.data) < ask or split.consumed == 0:
            break  # end of file, or only a partial line is left
    else:
        result.behind = True
    result.cursor = cursor
    return result


def _finish_rotated(
    reader: Reader, path: str, old: Cursor, max_line: int, budget: int, result: TailResult
) -> None:
    """Lines the old file got after the last read, when rotation moved it to ``path.1``
    (logrotate's, supervisord's and Python's RotatingFileHandler's name); one read at most."""
    ask = min(reader.max_read, budget - result.read)
    if ask <= 0:
        return
    try:
        chunk = reader.read(f"{path}.1", old.offset, ask)
    except (LazarusError, OSError):
        return  # rotated elsewhere or removed: those lines are gone
    if chunk.inode != old.inode or chunk.size < old.offset:
        return
    result.read += len(chunk.data)
    data = chunk.data
    if len(data) < ask and not data.endswith(b"\n"):
        data += b"\n"  # nobody writes to a rotated file: its last line is complete
    split = split_lines(data, max_line, old.skipping)
    result.lines += split.lines
    result.cut += split.cut


def expand(path: str, host: str) -> str:
    """A configured path on one host (``{host}`` filled in)."""
    return path.replace("{host}", host)
