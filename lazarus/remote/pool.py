"""SSH connections kept warm across watch cycles, and a dead host dialled less and less often.

A handshake costs far more than an exec (DESIGN: ~170 ms against ~3 ms), so the watch keeps
one executor per SSH settings for the life of the process. A host whose dial fails is not
dialled again until its back-off has passed: 2 s, 4 s, 8 s ... capped at ``CAP_S``; meanwhile
calls fail at once with HostUnreachable saying so, and cost the other hosts nothing. The first
success clears it, and so does a probe answering again from a host whose probes had all failed
(it is back); a host whose services answer all along keeps its back-off (its sshd hangs).
"""

from __future__ import annotations

import atexit
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from lazarus.config import Host, SshSettings
from lazarus.errors import HostUnreachable, RemoteError
from lazarus.model import CommandResult
from lazarus.remote import Executor
from lazarus.remote.ssh import SshExecutor

BASE_S = 2.0
CAP_S = 120.0


@dataclass
class _Failing:
    count: int
    until: float
    error: str


class HostBackoff:
    """Exponential, capped back-off per host name; thread-safe."""

    def __init__(
        self, base: float = BASE_S, cap: float = CAP_S, clock: Callable[[], float] = time.monotonic
    ):
        self.base, self.cap, self.clock = base, cap, clock
        self._failing: dict[str, _Failing] = {}
        self._silent: set[str] = set()  # hosts whose every probe failed, until one answers
        self._lock = threading.Lock()

    def waiting(self, host: str) -> str:
        """Why ``host`` is not to be dialled now ("" when it may be)."""
        with self._lock:
            state = self._failing.get(host)
            if state is None or self.clock() >= state.until:
                return ""
            left = state.until - self.clock()
            return f"not dialled for {left:.0f}s more after {state.count} failure(s): {state.error}"

    def failed(self, host: str, error: str) -> float:
        """Record a failure; returns the delay before the next dial."""
        with self._lock:
            count = self._failing[host].count + 1 if host in self._failing else 1
            delay = min(self.cap, self.base * 2 ** (count - 1))
            self._failing[host] = _Failing(count, self.clock() + delay, error)
            return delay

    def succeeded(self, host: str) -> None:
        with self._lock:
            self._failing.pop(host, None)

    def probed(self, answering: Iterable[str], silent: Iterable[str]) -> None:
        """After a round of probes: a host ``silent`` before (every probe failing) that is
        ``answering`` now came back, so it may be dialled at once."""
        with self._lock:
            for host in set(answering) & self._silent:
                self._silent.discard(host)
                self._failing.pop(host, None)
            self._silent.update(silent)

    def failures(self, host: str) -> int:
        """Failed dials of ``host`` in a row (0 when it answers)."""
        with self._lock:
            state = self._failing.get(host)
            return state.count if state else 0


class BackoffExecutor:
    """An Executor that skips hosts in back-off and records every dial's outcome."""

    def __init__(self, inner: Executor, backoff: HostBackoff | None = None):
        self.inner = inner
        self.backoff = backoff or HostBackoff()

    def run(
        self, host: Host, argv: Sequence[str], *, timeout: float | None = None
    ) -> CommandResult:
        why = self.backoff.waiting(host.name)
        if why:
            raise HostUnreachable(host.name, why)
        try:
            result = self.inner.run(host, argv, timeout=timeout)
        except RemoteError as exc:
            self.backoff.failed(host.name, f"{type(exc).__name__}: {exc}")
            raise
        self.backoff.succeeded(host.name)
        return result

    def close(self) -> None:
        self.inner.close()


_shared: dict[tuple[SshSettings, Path], BackoffExecutor] = {}
_guard = threading.Lock()


def shared_executor(settings: SshSettings, base_dir: Path) -> BackoffExecutor:
    """The process's executor for these settings: connections and back-off outlive a cycle."""
    key = (settings, Path(base_dir).resolve())
    with _guard:
        if key not in _shared:
            _shared[key] = BackoffExecutor(SshExecutor(settings, base_dir))
        return _shared[key]


@atexit.register
def close_all() -> None:
    """Close every warm connection (at exit, and in tests between sandboxes)."""
    with _guard:
        executors = list(_shared.values())
        _shared.clear()
    for executor in executors:
        executor.close()
