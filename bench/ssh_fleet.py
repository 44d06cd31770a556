"""Many SSH hosts on one machine: real OpenSSH sshd processes, each host its own loopback address.

Hosts are ``127.1.X.Y`` (the whole of 127.0.0.0/8 is loopback on Linux, so no address needs
adding). OpenSSH listens on at most 16 addresses per process, so host N is served by sshd
number N // 16: 1,000 hosts are 63 sshd processes. Each sshd has its own host key, and
``known_hosts`` pins each address to its sshd's key, so every connection is verified as in
production. The login is root with an empty home (see CLEAN_HOME). Processes are stopped by PID.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from pathlib import Path

from lazarus.sandbox import _proc
from lazarus.sandbox.files import keygen, known_hosts_line

PER_SSHD = 16  # OpenSSH's MAX_LISTEN_SOCKS
# sshd in its own mount namespace with an empty /root, as on a fresh host: this machine's
# /root/.bashrc runs `pyenv init`, about 300 processes and 0.3-2 s for every SSH command.
CLEAN_HOME = [
    "unshare", "-m", "--propagation", "private", "sh", "-c",
    'mount -t tmpfs -o size=1m lazarus-bench /root && exec /usr/sbin/sshd -D -e -f "$0"',
]  # fmt: skip
READY_S = 60.0


@dataclass(frozen=True)
class SshTarget:
    name: str
    address: str


def address(number: int) -> str:
    """The loopback address of host ``number`` (0-based): 127.1.0.1, 127.1.0.2 ... 127.1.0.254,
    127.1.1.1 ..."""
    return f"127.1.{number // 254}.{number % 254 + 1}"


def free_port() -> int:
    """A port free on every address (bound on the wildcard), so no address of ours clashes."""
    with socket.socket() as s:
        s.bind(("0.0.0.0", 0))
        return int(s.getsockname()[1])


class SshFleet:
    """``count`` hosts ``prefix-0001``... served by ``ceil(count/16)`` sshd processes."""

    def __init__(self, root: Path, count: int, prefix: str = "syn"):
        self.root, self.count = root, count
        self.targets = [SshTarget(f"{prefix}-{i + 1:04d}", address(i)) for i in range(count)]
        self.port = free_port()
        self.key = root / "client_key"
        self.known_hosts = root / "known_hosts"
        self._pids: list[int] = []

    def start(self) -> SshFleet:
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / "authorized_keys").write_text(keygen(self.key, "lazarus-bench") + "\n")
        Path("/run/sshd").mkdir(parents=True, exist_ok=True)
        pinned = []
        try:
            for first in range(0, self.count, PER_SSHD):
                group = self.targets[first : first + PER_SSHD]
                folder = self.root / f"sshd-{first // PER_SSHD:03d}"
                folder.mkdir(exist_ok=True)
                public = keygen(folder / "host_key", f"sshd-{first // PER_SSHD}")
                pinned += [known_hosts_line(t.address, self.port, public) for t in group]
                conf = self._config(folder, [t.address for t in group])
                self._pids.append(_proc.spawn([*CLEAN_HOME, str(conf)], folder / "out"))
            self.known_hosts.write_text("".join(pinned))
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def _config(self, folder: Path, addresses: list[str]) -> Path:
        path = folder / "sshd_config"
        listen = "".join(f"ListenAddress {a}\n" for a in addresses)
        path.write_text(
            f"Port {self.port}\n{listen}"
            f"HostKey {folder / 'host_key'}\n"
            f"PidFile {folder / 'sshd.pid'}\n"
            f"AuthorizedKeysFile {self.root / 'authorized_keys'}\n"
            "UsePAM no\nPubkeyAuthentication yes\nPasswordAuthentication no\n"
            "KbdInteractiveAuthentication no\nPermitRootLogin prohibit-password\n"
            "StrictModes no\nUseDNS no\nPrintMotd no\nLogLevel ERROR\n"
            # one sshd stands in for 16 hosts, each of which would see one dial from us at a time
            "MaxStartups 200\n"
        )
        return path

    def _wait_ready(self) -> None:
        waiting = {t.address for t in self.targets}

        def progress() -> bool:
            waiting.difference_update([a for a in list(waiting) if _proc.ssh_banner(a, self.port)])
            return not waiting

        if not _proc.wait_for(progress, READY_S, interval=0.2):
            raise RuntimeError(f"{len(waiting)} sshd addresses never answered, e.g. {min(waiting)}")

    def stop(self) -> None:
        _proc.stop([(pid, "sshd") for pid in self._pids])
        self._pids = []
