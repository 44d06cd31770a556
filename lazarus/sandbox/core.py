"""A sandbox of real hosts: sshd + supervisord + a demo web service per host, and sinks.

Each host is a network namespace on a bridge (or, where namespaces cannot be made, a loopback
address); Lazarus reaches it over real SSH and restarts its service with real supervisorctl.
Everything started is recorded by PID in <root>/sandbox.json, so another process can
``Sandbox.load(root)`` to inject faults or tear it down.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import sys
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from typing import Any, Literal

from lazarus.errors import LazarusError
from lazarus.sandbox import _proc, database, files, host_faults, network, supervisor

Fault = Literal[
    "kill", "hang", "error", "clear", "partition", "heal", "fill-disk", "bad-release", "flap",
    "skew", "db-stop", "ssh-hang",
]  # fmt: skip
FAULTS: tuple[str, ...] = (
    "kill", "hang", "error", "clear", "partition", "heal", "fill-disk", "bad-release", "flap",
    "skew", "db-stop", "ssh-hang",
)  # fmt: skip
Power = Literal["on", "off", "cycle"]
POWER: tuple[str, ...] = ("on", "off", "cycle")
SERVICE_PORT = 8080
FALLBACK_SSH_PORT = 2222
READY_TIMEOUT = 30.0
# Interface names hold at most 15 characters: "lzbr-" + 8 and "lz" + 8 + "-200" both fit.
_NAME = re.compile(r"^[a-z0-9]{1,8}$")
MAX_HOSTS = 200


class SandboxError(LazarusError):
    """The sandbox could not be started, found or changed; the message says which part."""


@dataclass(frozen=True)
class SandboxHost:
    """One simulated host; ``netns`` is empty in loopback mode."""

    name: str
    address: str
    ssh_port: int
    service_port: int
    netns: str


class Sandbox:
    """Handle on a running sandbox; build one with ``up`` or ``load``."""

    def __init__(self, root: Path, state: dict[str, Any]):
        self.root = root
        self.name: str = state["name"]
        self.subnet: int = state["subnet"]
        self.hosts = [SandboxHost(**h) for h in state["hosts"]]
        self.smtp_port: int = state["smtp_port"]
        self.http_port: int = state["http_port"]
        db = state.get("database")
        self.database = database.SandboxDatabase(**db) if db else None
        self._pids: dict[str, list] = state.get("pids", {})  # key -> [pid, cmdline marker]

    # --- life cycle ---------------------------------------------------------------------------

    @classmethod
    def up(
        cls,
        root: Path,
        *,
        name: str = "demo",
        hosts: int = 3,
        subnet: int = 213,
        netns: bool | None = None,
        with_database: bool | None = None,
    ) -> Sandbox:
        """Start a sandbox of ``hosts`` hosts under ``root`` and wait until all of it answers.

        Leftovers of a sandbox with the same name go first, with its incidents and messages.
        ``netns=None`` uses network namespaces when they can be made, else loopback addresses;
        ``with_database=None`` runs PostgreSQL on the first host when it is installed.
        On failure everything started is stopped again and SandboxError says what did not come
        up.
        """
        if not _NAME.match(name):
            raise SandboxError(f"sandbox name {name!r}: use 1-8 lower-case letters or digits")
        if not 1 <= hosts <= MAX_HOSTS or not 0 < subnet < 255:
            raise SandboxError(f"hosts must be 1..{MAX_HOSTS} and subnet 1..254")
        root = Path(root).resolve()
        root.mkdir(parents=True, exist_ok=True)
        _clear_leftovers(root, name)
        # New hosts, new history: incidents, breakers, leases and the sinks' inboxes go too.
        for kept in ("state", "sinks"):
            shutil.rmtree(root / kept, ignore_errors=True)
        use_netns = network.netns_available() if netns is None else netns
        use_db = database.available() if with_database is None else with_database
        sandbox = cls(root, _plan(name, hosts, subnet, use_netns))
        try:
            sandbox._start(use_netns, use_db)
        except BaseException as exc:
            sandbox.down()
            if isinstance(exc, SandboxError | KeyboardInterrupt):
                raise
            raise SandboxError(f"sandbox {name!r} did not start: {exc}") from exc
        return sandbox

    @classmethod
    def load(cls, root: Path) -> Sandbox:
        """The sandbox recorded in <root>/sandbox.json."""
        path = Path(root).resolve() / "sandbox.json"
        try:
            return cls(path.parent, json.loads(path.read_text()))
        except FileNotFoundError:
            raise SandboxError(
                f"no sandbox is running from {path.parent} (no sandbox.json):"
                " start one with `lazarus sandbox up`"
            ) from None
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise SandboxError(f"{path} is unreadable ({exc})") from None

    def down(self) -> None:
        """Stop every process this sandbox started (by PID) and remove its network."""
        _proc.stop([(pid, marker) for pid, marker in self._pids.values()])
        _proc.stop([(pid, "") for h in self.hosts if h.netns for pid in network.pids_in(h.netns)])
        network.destroy(self.name)
        if self.database is not None:
            database.remove(self.database)
        self._pids = {}
        self.state_path.unlink(missing_ok=True)

    # --- what tests and the demo ask ----------------------------------------------------------

    @property
    def config_path(self) -> Path:
        return self.root / "lazarus.yaml"

    @property
    def state_path(self) -> Path:
        return self.root / "sandbox.json"

    @property
    def sinks_dir(self) -> Path:
        return self.root / "sinks"

    def host(self, name: str) -> SandboxHost:
        for host in self.hosts:
            if host.name == name:
                return host
        raise SandboxError(f"no host {name!r} in sandbox {self.name!r}")

    def host_dir(self, name: str) -> Path:
        return self.root / "hosts" / name

    def service_pid(self, host: str, started: bool = False) -> int | None:
        """PID of the host's web service as supervisord reports it; None when not running
        (``started``: nor still starting, lazarus.sandbox.supervisor.program_pid)."""
        sock = self.host_dir(self.host(host).name) / files.SUPERVISOR_SOCK
        return supervisor.program_pid(sock, files.SERVICE, started=started)

    def health(self, host: str) -> int | None:
        """HTTP status of the host's /health (1 s timeout); None when nothing answers."""
        h = self.host(host)
        try:
            with urllib.request.urlopen(
                f"http://{h.address}:{h.service_port}/health", timeout=1.0
            ) as resp:
                return resp.status
        except urllib.error.HTTPError as exc:
            return exc.code
        except (OSError, ValueError):
            return None

    def mail(self) -> list[dict]:
        from lazarus.sandbox.sinks import read_messages

        return read_messages(self.sinks_dir, "mail")

    def chat(self) -> list[dict]:
        from lazarus.sandbox.sinks import read_messages

        return read_messages(self.sinks_dir, "http")

    def fault(self, host: str, mode: Fault) -> None:
        """Break (or mend) one host: kill/hang/error its service, partition it, fill its disk,
        deploy its bad release, make its service crash soon after every start (flap), set its
        clock 30 s ahead as SSH reads it (skew), stop its database (``db-stop``), freeze its
        sshd and every session under it with SIGSTOP (``ssh-hang``); ``clear`` ends
        hang/error/flap/skew/ssh-hang, empties the disk, puts the good release back, starts a
        stopped database and a killed service again, ``heal`` restores the network."""
        h = self.host(host)
        if mode == "clear":
            _proc.signal_tree(self._sshd_pid(h), signal.SIGCONT)
            self._undo_host_faults(h)
            (self.host_dir(host) / files.FLAP_FILE).unlink(missing_ok=True)
            files.skew_clock(self.host_dir(host), None)
            if self._db_on(host) and not self._db_ready():
                self._db_control(host, "start")
        if mode in ("fill-disk", "bad-release"):
            self._host_fault(h, mode)
        elif mode == "ssh-hang":  # connections open and accepted, never answered
            _proc.signal_tree(self._sshd_pid(h), signal.SIGSTOP)
        elif mode == "skew":
            files.skew_clock(self.host_dir(host), files.SKEW_SECONDS)
        elif mode == "flap":
            (self.host_dir(host) / files.FLAP_FILE).touch()
            if self.service_pid(host) is not None:
                self.fault(host, "kill")
        elif mode == "kill":
            # killed in its first second (startsecs), supervisord would start it again: wait
            if self.service_pid(host) is not None:
                _proc.wait_for(lambda: self.service_pid(host, started=True), 5.0, interval=0.05)
            pid = self.service_pid(host)
            if pid is None:
                raise SandboxError(f"{host}: the service is not running, nothing to kill")
            os.kill(pid, signal.SIGKILL)
            # done once supervisord, too, no longer reports it (it learns of the death a moment
            # after the process is gone)
            _proc.wait_for(
                lambda: not _proc.alive(pid) and self.service_pid(host) != pid, 5.0, interval=0.05
            )
        elif mode == "clear" and self.service_pid(host) is None:
            self._start_service(h)
        elif mode in ("hang", "error", "clear"):
            url = f"http://{h.address}:{h.service_port}/fault?mode={mode}"
            try:
                urllib.request.urlopen(urllib.request.Request(url, method="POST"), timeout=2.0)
            except OSError as exc:
                raise SandboxError(f"{host}: the service did not take the fault: {exc}") from None
        elif mode == "db-stop":
            self._db_control(host, "stop")
        elif mode in ("partition", "heal"):
            self._set_reachable(h, mode == "heal")
            if mode == "heal" and not _proc.wait_for(
                lambda: _proc.ssh_banner(h.address, h.ssh_port), READY_TIMEOUT
            ):
                raise SandboxError(f"{host}: sshd does not answer after heal")
        else:
            raise SandboxError(f"unknown fault {mode!r}; one of {', '.join(FAULTS)}")

    def disk_used_percent(self, host: str) -> int:
        """``df`` Use% of the host's small disk, as the host's own SSH sessions see it."""
        h = self.host(host)
        return host_faults.disk_used_percent(self._sshd_pid(h), self.disk_dir(h.name))

    def disk_dir(self, host: str) -> Path:
        return self.host_dir(host) / "disk"

    def releases_dir(self, host: str) -> Path:
        return self.host_dir(host) / "releases"

    # --- internals ----------------------------------------------------------------------------

    def _sshd_pid(self, host: SandboxHost) -> int:
        return int(self._pids[f"sshd:{host.name}"][0])

    def _host_fault(self, host: SandboxHost, mode: str) -> None:
        if mode == "fill-disk":
            host_faults.fill_disk(self._sshd_pid(host), self.disk_dir(host.name))
        elif host_faults.point(self.releases_dir(host.name), host_faults.BAD):
            self._restart_service(host, expect=500)  # a deploy: switch the link, restart

    def _undo_host_faults(self, host: SandboxHost) -> None:
        host_faults.clear_disk(self._sshd_pid(host), self.disk_dir(host.name))
        if host_faults.point(self.releases_dir(host.name), host_faults.GOOD):
            self._restart_service(host, expect=200)

    def _restart_service(self, host: SandboxHost, expect: int) -> None:
        conf = str(self.host_dir(host.name) / "supervisord.conf")
        _proc.run(["supervisorctl", "-c", conf, "restart", files.SERVICE], timeout=15, check=False)
        if not _proc.wait_for(lambda: self.health(host.name) == expect, READY_TIMEOUT):
            raise SandboxError(f"{host.name}: the service does not answer {expect} after a restart")

    def _mount_disks(self) -> None:
        for host in self.hosts:
            host_faults.mount_disk(self._sshd_pid(host), self.disk_dir(host.name))

    def power(self, host: str, action: Power) -> None:
        """The sandbox's out-of-band power switch (what IPMI is to a real host): ``off`` cuts
        the host off, ``on`` and ``cycle`` bring it back with its services freshly started."""
        h = self.host(host)
        if action not in POWER:
            raise SandboxError(f"unknown power action {action!r}; one of {', '.join(POWER)}")
        self._set_reachable(h, action != "off")
        if action == "off":
            return
        conf = str(self.host_dir(host) / "supervisord.conf")
        _proc.run(["supervisorctl", "-c", conf, "restart", "all"], timeout=60, check=False)
        if not _proc.wait_for(
            lambda: _proc.ssh_banner(h.address, h.ssh_port) and self.health(host) is not None,
            READY_TIMEOUT,
        ):
            raise SandboxError(f"{host}: does not answer after power {action}")

    def _db_on(self, host: str) -> bool:
        return self.database is not None and self.database.host == host

    def _db_control(self, host: str, verb: str) -> None:
        """``supervisorctl stop|start postgres`` on the database's host; start waits for it."""
        if not self._db_on(host):
            where = f"it runs on {self.database.host}" if self.database else "there is none"
            raise SandboxError(f"{host}: no database here ({where})")
        conf = str(self.host_dir(host) / "supervisord.conf")
        _proc.run(["supervisorctl", "-c", conf, verb, database.PROGRAM], timeout=30, check=False)
        if verb == "start" and not _proc.wait_for(self._db_ready, READY_TIMEOUT):
            raise SandboxError(f"{host}: the database does not accept connections after start")

    def _db_ready(self) -> bool:
        return self.database is not None and _proc.port_open(self.database.address, database.PORT)

    def _start(self, use_netns: bool, use_db: bool = False) -> None:
        Path("/run/sshd").mkdir(parents=True, exist_ok=True)
        files.keygen(self.root / "id_ed25519", f"lazarus@{self.name}")
        (self.root / "authorized_keys").write_text((self.root / "id_ed25519.pub").read_text())
        known = ""
        if use_db:
            first = self.hosts[0]
            self.database = database.init(first.name, first.address, self.root)
            self._save()
        needs = f"{self.database.address}:{database.PORT}" if self.database else ""
        for host in self.hosts:
            d = self.host_dir(host.name)
            d.mkdir(parents=True, exist_ok=True)
            public = files.keygen(d / "ssh_host_ed25519_key", f"{host.name}@{self.name}")
            known += files.known_hosts_line(host.address, host.ssh_port, public)
            files.sshd_config(self.root, d, host.address, host.ssh_port)
            extra = database.program(self.database, d) if self._db_on(host.name) else ""
            files.supervisord_config(d, host.address, host.service_port, needs, extra)
            host_faults.make_releases(d)
        (self.root / "known_hosts").write_text(known)
        if use_netns:
            network.create(self.name, self.subnet, [(h.name, h.address) for h in self.hosts])
        for host in self.hosts:
            self._spawn_sshd(host)
            conf = self.host_dir(host.name) / "supervisord.conf"
            self._spawn(
                f"supervisord:{host.name}", host, ["supervisord", "-n", "-c", str(conf)], str(conf)
            )
        self.sinks_dir.mkdir(exist_ok=True)
        self._spawn("sinks", None, [
            sys.executable, "-m", "lazarus.sandbox.sinks", "--dir", str(self.sinks_dir),
            "--smtp-port", str(self.smtp_port), "--http-port", str(self.http_port),
        ], str(self.sinks_dir))  # fmt: skip
        files.write_yaml(self.config_path, files.lazarus_config(
            self.root, [(h.name, h.address, h.ssh_port) for h in self.hosts],
            SERVICE_PORT, self.smtp_port, self.http_port,
            database.config_entry(self.database, self.root) if self.database else None,
        ))  # fmt: skip
        self._wait_ready()
        self._mount_disks()

    def _spawn(self, key: str, host: SandboxHost | None, argv: list[str], marker: str) -> None:
        prefix = network.exec_prefix(host.netns) if host and host.netns else []
        self._pids[key] = [_proc.spawn([*prefix, *argv], self._log_of(key)), marker]
        self._save()

    def _log_of(self, key: str) -> Path:
        """Where a process's output goes: ``sshd:web-1`` -> hosts/web-1/sshd.out."""
        kind, _, host = key.partition(":")
        return (self.host_dir(host) if host else self.sinks_dir) / f"{kind}.out"

    def _spawn_sshd(self, host: SandboxHost) -> None:
        conf = self.host_dir(host.name) / "sshd_config"
        own_mounts = [] if host.netns else ["unshare", "-m", "--propagation", "slave"]
        argv = [*own_mounts, "/usr/sbin/sshd", "-D", "-e", "-f", str(conf)]
        self._spawn(f"sshd:{host.name}", host, argv, str(conf))

    def _wait_ready(self) -> None:
        """Every sshd answers, every /health is 200 and the sinks said ``ready``; or raise as
        soon as a started process dies, with the last lines it logged."""
        pending: dict[str, Callable[[], bool]] = {"notification sinks": self._sinks_ready}
        for h in self.hosts:
            pending[f"sshd on {h.name} ({h.address}:{h.ssh_port})"] = partial(
                _proc.ssh_banner, h.address, h.ssh_port
            )
            pending[f"web on {h.name} (/health 200)"] = partial(self._healthy, h.name)
        if self.database is not None:
            pending[f"postgres on {self.database.host}"] = self._db_ready

        def progress() -> bool:
            for key, (pid, _) in self._pids.items():
                if not _proc.alive(pid):
                    raise SandboxError(f"{key} exited during start: {self._last_lines(key)}")
            for what in [w for w, ready in pending.items() if ready()]:
                del pending[what]
            return not pending

        if not _proc.wait_for(progress, READY_TIMEOUT, interval=0.1):
            raise SandboxError(
                f"{', '.join(pending)} did not come up within {READY_TIMEOUT:g}s;"
                f" logs in {self.root}"
            )

    def _healthy(self, host: str) -> bool:
        return self.health(host) == 200

    def _last_lines(self, key: str) -> str:
        try:
            lines = self._log_of(key).read_text(errors="replace").strip().splitlines()
        except OSError:
            lines = []
        return " / ".join(lines[-2:]) if lines else f"no output (see {self._log_of(key)})"

    def _sinks_ready(self) -> bool:
        log = self.sinks_dir / "sinks.out"
        return log.exists() and "ready" in log.read_text(errors="replace").split()

    def _start_service(self, host: SandboxHost) -> None:
        """Start a stopped or killed service and wait for /health 200."""
        conf = str(self.host_dir(host.name) / "supervisord.conf")
        _proc.run(["supervisorctl", "-c", conf, "start", files.SERVICE], timeout=15, check=False)
        if not _proc.wait_for(lambda: self.health(host.name) == 200, READY_TIMEOUT):
            raise SandboxError(f"{host.name}: the service does not answer after a start")

    def _set_reachable(self, host: SandboxHost, reachable: bool) -> None:
        if host.netns:
            network.set_link(self.name, self.hosts.index(host) + 1, reachable)
            return
        # loopback mode: no link to cut, so the host "vanishes" by stopping sshd and service
        if reachable:
            pid, _ = self._pids.get(f"sshd:{host.name}", (0, ""))
            if not _proc.alive(pid):
                self._spawn_sshd(host)
                _proc.wait_for(lambda: _proc.ssh_banner(host.address, host.ssh_port), 10.0)
                host_faults.mount_disk(self._sshd_pid(host), self.disk_dir(host.name))
            if self.service_pid(host.name) is None:
                self._start_service(host)
        else:
            _proc.stop([tuple(self._pids.pop(f"sshd:{host.name}", (0, "")))])
            conf = str(self.host_dir(host.name) / "supervisord.conf")
            _proc.run(["supervisorctl", "-c", conf, "stop", files.SERVICE], timeout=15, check=False)
            self._save()

    def _save(self) -> None:
        state = {
            "name": self.name, "subnet": self.subnet, "smtp_port": self.smtp_port,
            "http_port": self.http_port, "hosts": [asdict(h) for h in self.hosts],
            "pids": self._pids, "database": asdict(self.database) if self.database else None,
        }  # fmt: skip
        self.state_path.write_text(json.dumps(state, indent=2))


def _plan(name: str, hosts: int, subnet: int, use_netns: bool) -> dict[str, Any]:
    """Names, addresses and ports of a sandbox before anything is started."""
    from lazarus.sandbox.sinks import free_port

    planned = []
    for i in range(1, hosts + 1):
        if use_netns:
            address, port, ns = f"10.{subnet}.0.{10 + i}", 22, network.namespace(name, i)
        else:
            address, port, ns = f"127.{subnet}.0.{10 + i}", FALLBACK_SSH_PORT, ""
        planned.append(asdict(SandboxHost(f"web-{i}", address, port, SERVICE_PORT, ns)))
    return {"name": name, "subnet": subnet, "hosts": planned,
            "smtp_port": free_port(), "http_port": free_port()}  # fmt: skip


def _clear_leftovers(root: Path, name: str) -> None:
    """Stop what an earlier sandbox of this name left behind (processes, namespaces, bridge)."""
    if (root / "sandbox.json").exists():
        try:
            Sandbox.load(root).down()
        except SandboxError:
            (root / "sandbox.json").unlink(missing_ok=True)
    _proc.stop([(pid, "") for ns in network.leftovers(name) for pid in network.pids_in(ns)])
    network.destroy(name)
