"""Host metrics read over SSH: load, memory and disk, with one round trip per host.

The command is a constant (no value from config or the host reaches the shell), and each
section is parsed on its own so a host without ``df`` still reports load and memory.
Hosts are read side by side, each on its own: a hung or dead host costs its own timeout and
leaves every other host's series whole.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from lazarus.config import Host
from lazarus.errors import RemoteError
from lazarus.model import Sample
from lazarus.remote import Executor

WORKERS = 32  # hosts read at once; each mostly waits on its socket
SERIES = ("load1", "mem_available_ratio", "disk_used_ratio")  # what ``parse`` reads

_SEPARATOR = "--lazarus-section--"
COMMAND = [
    "sh",
    "-c",
    f"cat /proc/loadavg; echo {_SEPARATOR}; cat /proc/meminfo; echo {_SEPARATOR}; df -P -k",
]


def collect(executor: Executor, host: Host, *, timeout: float = 10.0) -> list[Sample]:
    """Samples ``load1``, ``mem_available_ratio`` and ``disk_used_ratio`` (per mount) of a host."""
    result = executor.run(host, COMMAND, timeout=timeout)
    return parse(result.stdout, host=host.name, at=time.time())


@dataclass(frozen=True)
class Readings:
    """One cycle's samples of every host that answered, and why each other host did not."""

    samples: list[Sample]
    failed: dict[str, str]


def collect_all(
    executor: Executor, hosts: Sequence[Host], *, timeout: float = 10.0, workers: int = WORKERS
) -> Readings:
    """Every host's samples, at most ``workers`` hosts at once; a failing host is noted in
    ``failed`` and never stops the others."""

    def one(host: Host) -> tuple[list[Sample], str]:
        try:
            return collect(executor, host, timeout=timeout), ""
        except RemoteError as exc:
            return [], f"{type(exc).__name__}: {exc}"

    if not hosts:
        return Readings([], {})
    with ThreadPoolExecutor(max_workers=min(workers, len(hosts))) as pool:
        results = list(pool.map(one, hosts))
    samples = [s for found, _ in results for s in found]
    failed = {h.name: why for h, (_, why) in zip(hosts, results, strict=True) if why}
    return Readings(samples, failed)


def parse(text: str, *, host: str, at: float) -> list[Sample]:
    """Parse the three sections of COMMAND's output; a missing or garbled section is skipped."""
    sections = [*text.split(_SEPARATOR), "", ""][:3]
    labels = (("host", host),)
    samples = []
    load = _number(sections[0].split()[:1])
    if load is not None:
        samples.append(Sample("load1", labels, load, at))
    meminfo = {}
    for line in sections[1].splitlines():
        name, _, rest = line.partition(":")
        value = _number(rest.split()[:1])
        if value is not None:
            meminfo[name.strip()] = value
    if meminfo.get("MemTotal"):
        ratio = meminfo.get("MemAvailable", 0.0) / meminfo["MemTotal"]
        samples.append(Sample("mem_available_ratio", labels, ratio, at))
    for line in sections[2].splitlines()[1:]:
        fields = line.split()
        if len(fields) >= 6 and fields[1].isdigit() and int(fields[1]) > 0:
            used = int(fields[2]) / int(fields[1])
            mount_labels = (("host", host), ("mount", fields[5]))
            samples.append(Sample("disk_used_ratio", mount_labels, used, at))
    return samples


def _number(tokens: list[str]) -> float | None:
    try:
        return float(tokens[0])
    except (IndexError, ValueError):
        return None
