"""One collection cycle over every configured log file: which files, read by whom, into a batch.

Each (host, file) is read on its own: an unreachable host or a missing file is logged and
recorded against that file, and every other file is still read. Hosts are read side by side
(one thread per host, its files one after another), so a cycle costs the slowest host.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

from lazarus.config import Config, Host, LogFile, SshSettings
from lazarus.errors import LazarusError
from lazarus.logcollect.offsets import Offsets
from lazarus.logcollect.tail import (
    LocalReader,
    Reader,
    SshReader,
    expand,
    output_limit_for,
    tail_file,
)
from lazarus.remote.ssh import SshExecutor
from lazarus.store import Store

log = logging.getLogger(__name__)

LOCAL_HOST = "localhost"
_WORKERS = 8


@dataclass(frozen=True)
class FileLines:
    """What one cycle read from one file of one service instance."""

    host: str
    service: str
    path: str
    format: str
    lines: list[str]
    read: int = 0
    cut: int = 0
    rotated: bool = False
    truncated: bool = False
    behind: bool = False
    error: str = ""


@dataclass(frozen=True)
class LogBatch:
    """Every file's new lines of one cycle, stamped with the cycle's time."""

    at: float
    files: list[FileLines]

    def lines(self, host: str, service: str) -> list[str]:
        """The new lines of one service instance, over all its files."""
        return [
            line for f in self.files if (f.host, f.service) == (host, service) for line in f.lines
        ]

    @property
    def errors(self) -> list[FileLines]:
        return [f for f in self.files if f.error]


@dataclass(frozen=True)
class _Target:
    file: LogFile
    host: str
    path: str
    ssh_host: Host | None


def _targets(config: Config, services: set[str]) -> list[_Target]:
    """(file, host) pairs to read: each host of the file's service, or this machine once."""
    out = []
    for spec in config.logs.files:
        if spec.service not in services:
            continue
        hosts = config.inventory.hosts_of(config.inventory.service(spec.service))
        if spec.local and "{host}" not in spec.path:
            out.append(_Target(spec, LOCAL_HOST, spec.path, None))
            continue
        for host in hosts:
            out.append(
                _Target(spec, host.name, expand(spec.path, host.name), None if spec.local else host)
            )
    return out


def ssh_settings(config: Config) -> SshSettings:
    """The inventory's SSH settings with an output cap that fits one cycle's budget.

    The cap guards against commands that print without end; the tail script prints at most
    the budget (as base64), so raising the cap to that costs one read per file per cycle
    instead of many small ones.
    """
    ssh = config.inventory.ssh
    return ssh.model_copy(
        update={"output_limit": max(ssh.output_limit, output_limit_for(config.logs.budget))}
    )


def collect(config: Config, store: Store, clock: Callable[[], float] = time.time) -> LogBatch:
    """Read every configured file's new lines, advancing and persisting each cursor."""
    offsets = Offsets(store)
    at = clock()
    known = {s.name for s in config.inventory.services}
    files = [
        FileLines(
            "", f.service, f.path, f.format, [], error=f"no service {f.service!r} in inventory"
        )
        for f in config.logs.files
        if f.service not in known
    ]
    groups: dict[tuple[str, bool], list[_Target]] = {}
    for target in _targets(config, known):
        groups.setdefault((target.host, target.ssh_host is None), []).append(target)
    if not groups:
        return LogBatch(at, files)
    ssh, local = ssh_settings(config), LocalReader()
    with (
        SshExecutor(ssh, config.base_dir) as executor,
        ThreadPoolExecutor(min(_WORKERS, len(groups))) as pool,
    ):

        def read_group(group: list[_Target]) -> list[FileLines]:
            host = group[0].ssh_host
            reader: Reader = (
                SshReader(executor, host, ssh.output_limit, ssh.command_timeout) if host else local
            )
            return [_read(t, reader, offsets, config, at) for t in group]

        files += [f for group in pool.map(read_group, groups.values()) for f in group]
    return LogBatch(at, files)


def _read(
    target: _Target, reader: Reader, offsets: Offsets, config: Config, at: float
) -> FileLines:
    spec, settings = target.file, config.logs
    base = FileLines(target.host, spec.service, target.path, spec.format, [])
    try:
        result = tail_file(
            reader,
            target.path,
            offsets.get(target.host, target.path),
            budget=settings.budget,
            max_line=settings.max_line,
            start=spec.start,
        )
    except (LazarusError, OSError, ValueError) as exc:
        error = str(exc) or type(exc).__name__
        log.warning("log %s on %s not read: %s", target.path, target.host, error)
        offsets.fail(target.host, target.path, error, at)
        return replace(base, error=error)
    offsets.save(target.host, target.path, result.cursor, result.cut, at)
    return replace(
        base,
        lines=result.lines,
        read=result.read,
        cut=result.cut,
        rotated=result.rotated,
        truncated=result.truncated,
        behind=result.behind,
    )


def signals_path(config: Config) -> Path:
    """The log-signal state (miner + template counts), beside the store."""
    return config.path(config.state.path).parent / "logsignals.json"
