"""Processes the sandbox starts: spawned detached, stopped by PID, never by name."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")

# Processes started by this Python process, so they are reaped rather than left as zombies.
_children: dict[int, subprocess.Popen[bytes]] = {}


def spawn(argv: Sequence[str], log: Path) -> int:
    """Start ``argv`` in its own session with output to ``log``; it outlives this process."""
    with log.open("ab") as out:
        proc = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    _children[proc.pid] = proc
    return proc.pid


def run(argv: Sequence[str], *, timeout: float = 10.0, check: bool = True) -> str:
    """Run a short command; RuntimeError (with its stderr) when ``check`` and it fails,
    TimeoutError when it outlives ``timeout``."""
    try:
        done = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise TimeoutError(f"{' '.join(argv)} did not finish within {timeout:g}s") from None
    if check and done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({done.returncode}): {done.stderr.strip()}")
    return done.stdout


def alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie counts as gone; it is reaped when it is our child)."""
    child = _children.get(pid)
    if child is not None and child.poll() is not None:
        del _children[pid]
        return False
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def signal_tree(pid: int, sig: signal.Signals) -> None:
    """Send ``sig`` to ``pid`` and every process below it, parents first."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parent = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue  # gone meanwhile
        children.setdefault(parent, []).append(int(stat.parent.name))
    todo = [pid]
    while todo:
        current = todo.pop(0)
        with contextlib.suppress(ProcessLookupError):
            os.kill(current, sig)
        todo += children.get(current, [])


def stop(targets: Sequence[tuple[int, str]], *, grace: float = 5.0) -> None:
    """SIGTERM each (pid, marker) whose command line still holds the marker, all at once;
    SIGKILL whatever is left after ``grace`` seconds. A PID reused by someone else is left."""
    mine = [pid for pid, marker in targets if alive(pid) and marker in cmdline(pid)]
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in mine:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        if wait_for(lambda pids=tuple(mine): not any(alive(p) for p in pids), grace, interval=0.05):
            return
        mine = [pid for pid in mine if alive(pid)]


def wait_for(check: Callable[[], T], timeout: float, *, interval: float = 0.1) -> T | None:
    """Poll ``check`` until it returns something truthy or ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() >= deadline:
            return None
        time.sleep(interval)


def ssh_banner(address: str, port: int) -> bool:
    """True when an SSH server answers on address:port with its banner."""
    try:
        with socket.create_connection((address, port), timeout=1.0) as s:
            s.settimeout(1.0)
            return s.recv(4).startswith(b"SSH-")
    except OSError:
        return False


def port_open(address: str, port: int) -> bool:
    """True when something accepts TCP connections on address:port."""
    try:
        with socket.create_connection((address, port), timeout=1.0):
            return True
    except OSError:
        return False
