"""Clock offset and round-trip time per host, measured over SSH the NTP way.

Local wall time is read just before the command goes out (``sent``) and just after its answer
is back (``received``); the host prints its own wall time in between. Were both clocks equal,
the host's reading would lie in ``[sent, received]``, so ``offset = remote - (sent + received)
/ 2`` is right within ``rtt / 2`` with ``rtt = received - sent``. The RTT includes the SSH
session set-up, so the bound is generous, never too tight. Of ``tries`` readings the one with
the smallest RTT is kept (NTP's clock filter): the first may pay for the connection.

Series: ``clock_offset_seconds`` and ``probe_rtt_seconds``, labelled with the host.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from lazarus.config import Config, Host
from lazarus.errors import LazarusError
from lazarus.model import Sample
from lazarus.remote import Executor
from lazarus.remote.ssh import SshExecutor

log = logging.getLogger(__name__)

OFFSET, RTT = "clock_offset_seconds", "probe_rtt_seconds"
COMMAND = ["date", "+%s.%N"]


@dataclass(frozen=True)
class Reading:
    """One exchange: the host's clock minus ours, and the round trip that bounds its error."""

    offset: float
    rtt: float

    @property
    def error(self) -> float:
        return self.rtt / 2


def reading(sent: float, remote: float, received: float) -> Reading:
    """The NTP arithmetic for one exchange (all three in seconds of wall time)."""
    return Reading(offset=remote - (sent + received) / 2, rtt=received - sent)


def parse_remote(text: str) -> float:
    """Seconds since the epoch as ``date +%s.%N`` prints them; a ``date`` without ``%N``
    (busybox prints it literally) still gives whole seconds."""
    whole, _, fraction = text.strip().partition(".")
    if not whole.isdigit():
        raise ValueError(f"not a time from date: {text.strip()[:40]!r}")
    return float(whole) + (float(f"0.{fraction}") if fraction.isdigit() else 0.0)


def measure(
    executor: Executor, host: Host, *, tries: int = 3, clock: Callable[[], float] = time.time
) -> Reading:
    """The lowest-RTT reading of ``tries`` exchanges with ``host``; raises the RemoteError tree,
    or ValueError when the host's ``date`` answers nonsense."""
    readings = []
    for _ in range(max(tries, 1)):
        sent = clock()
        result = executor.run(host, COMMAND, timeout=10.0)
        received = clock()
        if not result.ok:
            raise ValueError(f"{host.name}: date exited {result.exit_code}: {result.stderr[:80]}")
        readings.append(reading(sent, parse_remote(result.stdout), received))
    return min(readings, key=lambda r: r.rtt)


def samples(executor: Executor, hosts: Iterable[Host]) -> list[Sample]:
    """Offset and RTT samples per host; a host that cannot be read is logged and skipped (its
    series then go absent, which the detectors report)."""
    out = []
    for host in hosts:
        try:
            found = measure(executor, host)
        except (LazarusError, ValueError) as exc:
            log.warning("clock of %s not read: %s", host.name, exc)
            continue
        labels = (("host", host.name),)
        now = time.time()
        out += [Sample(OFFSET, labels, found.offset, now), Sample(RTT, labels, found.rtt, now)]
    return out


def read_clocks(config: Config) -> list[Sample]:
    """Clock samples of every inventory host, over one SSH executor."""
    with SshExecutor(config.inventory.ssh, config.base_dir) as executor:
        return samples(executor, config.inventory.hosts)
