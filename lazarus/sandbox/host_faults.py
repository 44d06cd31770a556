"""Faults that live on a host's disk: a small filesystem to fill, and a release to deploy.

Each host has ``releases/`` with ``v1`` (healthy) and ``v2`` (its /health answers 500) and a
``current`` link the demo service reads at start, as a real deploy would. Each host's sshd
runs in a mount namespace of its own where a 16 MiB tmpfs is mounted on ``disk/``: only that
host's SSH sessions see it (``df`` on another host does not list it), and it goes away with
that sshd, so ``down`` leaves no mount behind. The same namespace gives the host an empty home
of its own, as a fresh host has, instead of this machine's root shell set-up.
"""

from __future__ import annotations

import os
from pathlib import Path

from lazarus.sandbox import _proc

GOOD, BAD = "v1", "v2"
DISK_SIZE = "16m"
FULL_PERCENT = 97


def make_releases(host_dir: Path) -> Path:
    """``releases/v1`` (healthy), ``releases/v2`` (answers 500) and ``current -> v1``."""
    releases = host_dir / "releases"
    for name, status in ((GOOD, 200), (BAD, 500)):
        (releases / name).mkdir(parents=True, exist_ok=True)
        (releases / name / "health").write_text(f"{status}\n")
    point(releases, GOOD)
    return releases


def point(releases: Path, name: str) -> bool:
    """Switch ``current`` to ``name`` atomically; False when it pointed there already."""
    link = releases / "current"
    if link.is_symlink() and os.readlink(link) == name:
        return False
    tmp = releases / ".current.tmp"
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(name)
    tmp.replace(link)
    return True


def release_status(current: Path) -> int:
    """The /health status the release behind ``current`` answers (200 when it says nothing)."""
    try:
        return int((current / "health").read_text().strip())
    except (OSError, ValueError):
        return 200


def _in_host(sshd_pid: int, script: str, *args: str) -> str:
    """Run ``script`` in the mount namespace of the host's sshd (where its disk is mounted)."""
    argv = ["nsenter", "-t", str(sshd_pid), "-m", "sh", "-c", script, "sandbox", *args]
    return _proc.run(argv, timeout=30)


def mount_disk(sshd_pid: int, disk: Path) -> None:
    """A ``DISK_SIZE`` tmpfs on ``disk`` seen only by the host's SSH sessions, and an empty
    home: bash sources root's ``.bashrc`` for every SSH command, and this machine's (pyenv,
    cargo) costs each remote command up to seconds that a sandbox host should not inherit."""
    disk.mkdir(parents=True, exist_ok=True)
    script = (
        'mountpoint -q "$1" || mount -t tmpfs -o size="$2" lazarus-disk "$1"; mkdir -p "$1/logs"; '
        'mountpoint -q "$3" || mount -t tmpfs -o size=1m,mode=700 lazarus-home "$3"'
    )
    _in_host(sshd_pid, script, str(disk), DISK_SIZE, os.path.expanduser("~root"))


_FILL = (
    'set -eu; total=$(df -Pk "$1" | awk "NR==2 {print \\$2}"); '
    'used=$(df -Pk "$1" | awk "NR==2 {print \\$3}"); want=$((total * $2 / 100 - used)); '
    '[ "$want" -gt 0 ] && head -c "$((want * 1024))" /dev/zero > "$1/logs/app.log.1"; '
    'touch -d "30 days ago" "$1/logs/app.log.1"; echo "$(date) app started" >> "$1/logs/app.log"'
)


def fill_disk(sshd_pid: int, disk: Path) -> None:
    """Old rotated logs fill the host's disk to ``FULL_PERCENT``; today's log stays small."""
    _in_host(sshd_pid, _FILL, str(disk), str(FULL_PERCENT))


def clear_disk(sshd_pid: int, disk: Path) -> None:
    _in_host(sshd_pid, 'rm -f "$1"/logs/*', str(disk))


def disk_used_percent(sshd_pid: int, disk: Path) -> int:
    """``df``'s Use% of the host's disk, read in the host's own mount namespace."""
    out = _in_host(sshd_pid, 'df -Pk "$1" | awk "NR==2 {print \\$5}"', str(disk))
    return int(out.strip().rstrip("%"))
