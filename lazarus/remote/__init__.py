"""Running commands on hosts, behind one small interface.

``Executor`` is what the rest of Lazarus calls; ``lazarus.remote.ssh.SshExecutor`` is the real
transport (paramiko, imported there only), and a local transport can sit behind the same
protocol later without any ``if ssh:`` branch in the callers.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from lazarus.config import Host
from lazarus.model import CommandResult


class Executor(Protocol):
    """Runs an argv on a host and returns what it did; raises the RemoteError tree."""

    def run(
        self, host: Host, argv: Sequence[str], *, timeout: float | None = None
    ) -> CommandResult: ...

    def close(self) -> None: ...


__all__ = ["Executor"]
