"""Persist mining state between watch cycles: one JSON file, replaced atomically."""

from __future__ import annotations

import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Protocol, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T", bound="Persistent")


class Persistent(Protocol):
    def to_dict(self) -> dict: ...

    @classmethod
    def from_dict(cls: type[T], data: dict) -> T: ...


def save(obj: Persistent, path: str | Path) -> None:
    """Write ``obj.to_dict()`` so a crash mid-write leaves the previous state intact."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(obj.to_dict(), handle, separators=(",", ":"))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load(cls: type[T], path: str | Path) -> T:
    """The state saved at ``path``; a fresh one when there is none or it is unreadable.

    Mining state is learned, not configured: losing it costs a re-learning period, never a
    failed cycle, so a damaged file is logged and replaced rather than raised.
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(data, dict):
            raise ValueError(f"a JSON object was expected, not {type(data).__name__}")
        return cls.from_dict(data)
    except FileNotFoundError:
        pass
    except (OSError, ValueError, TypeError, KeyError) as exc:
        log.warning("mining state %s is unreadable (%s); starting afresh", path, exc)
    return cls.from_dict({})
