"""One collection cycle over every configured log file and journal: which, read by whom, into a
batch.

Each (host, file) and (host, journal unit) is read on its own: an unreachable host or a missing
file is logged and recorded against it, and every other one is still read. Hosts are read side
by side (one thread per host, its files one after another), so a cycle costs the slowest host.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

from lazarus.config import Config, Host, LogFile, LogJournal, SshSettings
from lazarus.errors import LazarusError
from lazarus.logcollect import journal
from lazarus.logcollect.offsets import JournalCursors, Offsets
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
    """What one cycle read from one file (or journal: ``journal:<unit>``) of one service
    instance; ``restarted`` says why reading started again (a journal cursor that was lost)."""

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
    restarted: str = ""


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


@dataclass(frozen=True)
class _JournalTarget:
    journal: LogJournal
    host: Host


def _journal_targets(config: Config, services: set[str]) -> list[_JournalTarget]:
    """(journal, host) pairs to read: each host of the journal's service."""
    inventory = config.inventory
    return [
        _JournalTarget(spec, host)
        for spec in config.logs.journals
        if spec.service in services
        for host in inventory.hosts_of(inventory.service(spec.service))
    ]


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
    """Read every configured file's and journal's new lines, advancing and persisting each
    cursor."""
    offsets, cursors = Offsets(store), JournalCursors(store)
    at = clock()
    known = {s.name for s in config.inventory.services}
    unknown = [(f.service, f.path, f.format) for f in config.logs.files]
    unknown += [(j.service, _journal_path(j), journal.FORMAT) for j in config.logs.journals]
    files = [
        FileLines("", service, path, fmt, [], error=f"no service {service!r} in inventory")
        for service, path, fmt in unknown
        if service not in known
    ]
    groups: dict[tuple[str, bool], list[_Target | _JournalTarget]] = {}
    for target in _targets(config, known):
        groups.setdefault((target.host, target.ssh_host is None), []).append(target)
    for source in _journal_targets(config, known):
        groups.setdefault((source.host.name, False), []).append(source)
    if not groups:
        return LogBatch(at, files)
    ssh, local = ssh_settings(config), LocalReader()
    with (
        SshExecutor(ssh, config.base_dir) as executor,
        ThreadPoolExecutor(min(_WORKERS, len(groups))) as pool,
    ):

        def read_group(group: list[_Target | _JournalTarget]) -> list[FileLines]:
            first = group[0]
            host = first.host if isinstance(first, _JournalTarget) else first.ssh_host
            reader: Reader = (
                SshReader(executor, host, ssh.output_limit, ssh.command_timeout) if host else local
            )
            return [
                _read_journal(t, executor, cursors, config, at, ssh.command_timeout)
                if isinstance(t, _JournalTarget)
                else _read(t, reader, offsets, config, at)
                for t in group
            ]

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


def _journal_path(spec: LogJournal) -> str:
    return f"journal:{spec.unit}"


def _read_journal(
    target: _JournalTarget,
    executor: SshExecutor,
    cursors: JournalCursors,
    config: Config,
    at: float,
    timeout: float,
) -> FileLines:
    spec, host = target.journal, target.host.name
    base = FileLines(host, spec.service, _journal_path(spec), journal.FORMAT, [])
    reader = journal.JournalReader(
        executor, target.host, spec.unit, directory=spec.directory, timeout=timeout
    )
    try:
        result = journal.read_journal(
            reader,
            cursors.get(host, spec.unit),
            lines=spec.lines,
            max_line=config.logs.max_line,
            start=spec.start,
        )
    except (LazarusError, OSError, ValueError) as exc:
        error = str(exc) or type(exc).__name__
        log.warning("journal of %s on %s not read: %s", spec.unit, host, error)
        cursors.fail(host, spec.unit, error, at)
        return replace(base, error=error)
    if result.restarted:
        log.warning("journal of %s on %s: %s", spec.unit, host, result.restarted)
    cursors.save(host, spec.unit, result.cursor, bool(result.restarted), at)
    return replace(
        base,
        lines=result.lines,
        read=result.read,
        cut=result.cut,
        behind=result.behind,
        restarted=result.restarted,
    )


def signals_path(config: Config) -> Path:
    """The log-signal state (miner + template counts), beside the store."""
    return config.path(config.state.path).parent / "logsignals.json"
