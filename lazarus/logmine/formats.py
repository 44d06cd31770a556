"""Header formats (``<Date> <Time> <Level> <Content>``) and reading raw log files safely.

The format language is Loghub's: ``<Name>`` is a field, everything else is literal regex text,
and runs of spaces match any whitespace. ``<Content>`` is the message the miner parses.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from lazarus.errors import ConfigError

# A line longer than this is cut before it is decoded: a megabyte line costs what a short one does.
MAX_LINE_BYTES = 64 * 1024
_CHUNK = 1 << 20
_FIELD = re.compile(r"<(\w+)>")


class LogFormat:
    """A compiled header format; :meth:`split` returns the fields of one line or None."""

    def __init__(self, spec: str):
        if "<Content>" not in spec:
            raise ConfigError("a log format needs a <Content> field", field="format")
        self.spec = spec
        self.fields: list[str] = []
        pattern = ""
        for i, part in enumerate(_FIELD.split(spec)):
            if i % 2:
                if part in self.fields:
                    raise ConfigError(f"field <{part}> appears twice", field="format")
                self.fields.append(part)
                pattern += f"(?P<{part}>.*)" if part == "Content" else f"(?P<{part}>.*?)"
            else:
                pattern += re.sub(" +", r"\\s+", part)
        try:
            self._regex = re.compile(f"^{pattern}$", re.DOTALL)
        except re.error as exc:
            raise ConfigError(f"not a valid log format: {exc}", field="format") from exc

    def split(self, line: str) -> dict[str, str] | None:
        """The fields of ``line`` (``Content`` among them), or None if the header does not fit."""
        match = self._regex.match(line.strip())
        return match.groupdict() if match else None

    def content(self, line: str) -> str:
        """The message part of ``line``; a line whose header does not fit is all message."""
        fields = self.split(line)
        return fields["Content"] if fields is not None else line


def iter_lines(source: str | Path | BinaryIO) -> Iterator[str]:
    """Lines of a file as text: LF or CRLF ends, invalid UTF-8 replaced, long lines cut.

    Reads in bounded chunks, so neither a huge file nor a line without an end fills memory.
    """
    if isinstance(source, str | Path):
        with open(source, "rb") as handle:
            yield from iter_lines(handle)
        return
    pending = b""
    overflow = False
    while chunk := source.read(_CHUNK):
        parts = (pending + chunk).split(b"\n")
        pending = parts.pop()
        for part in parts:
            if overflow:
                overflow = False
                continue
            yield _decode(part)
        if len(pending) > MAX_LINE_BYTES:
            if not overflow:
                yield _decode(pending)
            overflow, pending = True, b""
    if pending and not overflow:
        yield _decode(pending)


def _decode(raw: bytes) -> str:
    if raw.endswith(b"\r"):
        raw = raw[:-1]
    return raw[:MAX_LINE_BYTES].decode("utf-8", "replace")
