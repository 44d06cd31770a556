"""The files a sandbox runs on: keys, sshd and supervisord configs, known_hosts, lazarus.yaml."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import yaml

from lazarus.sandbox import _proc

SERVICE = "web"
SUPERVISOR_SOCK = "supervisor.sock"  # supervisord's XML-RPC socket, in the host's folder
# The playbooks shipped beside the package: the sandbox runs from a checkout.
PLAYBOOKS = Path(__file__).resolve().parents[2] / "playbooks"


def keygen(path: Path, comment: str) -> str:
    """A fresh ed25519 key pair at ``path`` (+ .pub); returns the public key line."""
    for p in (path, path.with_name(path.name + ".pub")):
        p.unlink(missing_ok=True)
    _proc.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)])
    return path.with_name(path.name + ".pub").read_text().strip()


STANDARD_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def sshd_config(root: Path, host_dir: Path, address: str, port: int) -> Path:
    path = host_dir / "sshd_config"
    path.write_text(
        f"Port {port}\n"
        f"ListenAddress {address}\n"
        f"HostKey {host_dir / 'ssh_host_ed25519_key'}\n"
        f"PidFile {host_dir / 'sshd.pid'}\n"
        f"AuthorizedKeysFile {root / 'authorized_keys'}\n"
        "UsePAM no\n"
        "PubkeyAuthentication yes\n"
        "PasswordAuthentication no\n"
        "KbdInteractiveAuthentication no\n"
        "PermitRootLogin prohibit-password\n"
        "StrictModes no\n"
        "UseDNS no\n"
        "PrintMotd no\n"
        "LogLevel ERROR\n"
        # the host's own bin first: `fault skew` puts a `date` there that runs ahead
        f"SetEnv PATH={host_dir / 'bin'}:{STANDARD_PATH}\n"
    )
    return path


SKEW_SECONDS = 30
FLAP_FILE = "flapping"  # in a host's folder: while it exists, the service dies soon after start


def skew_clock(host_dir: Path, seconds: int | None) -> None:
    """Make the host's clock, as SSH sessions read it, run ``seconds`` ahead; None: mend it."""
    wrapper = host_dir / "bin" / "date"
    if seconds is None:
        wrapper.unlink(missing_ok=True)
        return
    wrapper.parent.mkdir(exist_ok=True)
    wrapper.write_text(f'#!/bin/sh\nexec /usr/bin/date -d "{seconds:+d} seconds" "$@"\n')
    wrapper.chmod(0o755)


def supervisord_config(
    host_dir: Path, address: str, service_port: int, db: str = "", extra: str = ""
) -> Path:
    """supervisord managing ``web`` (needing the database at ``db``, ADDRESS:PORT, if any) and
    the ``extra`` program sections; autorestart off so a killed service stays down."""
    path = host_dir / "supervisord.conf"
    sock = host_dir / SUPERVISOR_SOCK
    command = (
        f"{sys.executable} -m lazarus.sandbox.demo_service --host {address} --port {service_port}"
        f" --release {host_dir / 'releases' / 'current'}" + (f" --db {db}" if db else "")
    )
    path.write_text(
        "[unix_http_server]\n"
        f"file={sock}\n"
        "chmod=0700\n\n"
        "[supervisord]\n"
        "nodaemon=true\n"
        "user=root\n"
        f"logfile={host_dir / 'supervisord.log'}\n"
        f"pidfile={host_dir / 'supervisord.pid'}\n"
        f"childlogdir={host_dir}\n\n"
        "[rpcinterface:supervisor]\n"
        "supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface\n\n"
        "[supervisorctl]\n"
        f"serverurl=unix://{sock}\n\n"
        f"[program:{SERVICE}]\n"
        f"command={command}\n"
        f"directory={host_dir}\n"
        "autostart=true\n"
        "autorestart=false\n"
        "startsecs=1\n"
        "stopwaitsecs=3\n"
        f"stdout_logfile={host_dir / 'web.log'}\n"
        "redirect_stderr=true\n" + extra
    )
    return path


def known_hosts_line(address: str, port: int, public_key: str) -> str:
    """A known_hosts entry; ``[addr]:port`` when the port is not 22, as OpenSSH writes it."""
    key_type, key_b64 = public_key.split()[:2]
    name = address if port == 22 else f"[{address}]:{port}"
    return f"{name} {key_type} {key_b64}\n"


def lazarus_config(
    root: Path,
    hosts: list[tuple[str, str, int]],
    service_port: int,
    smtp_port: int,
    http_port: int,
    database: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The lazarus.yaml of the sandbox: hosts (name, address, ssh port), web (needing the
    ``database`` entry, if any), notify to sinks, the sandbox's power switch as out of band."""
    entries = []
    for name, address, ssh_port in hosts:
        entry: dict[str, Any] = {"name": name, "address": address}
        if ssh_port != 22:
            entry["port"] = ssh_port
        entries.append({**entry, "labels": {"role": "web"}})
    return {
        "inventory": {
            "ssh": {
                "user": "root",
                "key": "id_ed25519",
                "known_hosts": "known_hosts",
                "connect_timeout": 3,
                "command_timeout": 20,
            },
            "hosts": entries,
            "services": [
                {
                    "name": SERVICE,
                    "hosts": {"role": "web"},
                    "probe": {"http": f"http://{{address}}:{service_port}/health", "timeout": 1},
                    "control": {
                        "kind": "supervisor",
                        "unit": SERVICE,
                        "config": f"{root}/hosts/{{host}}/supervisord.conf",
                    },
                    "releases": {"dir": f"{root}/hosts/{{host}}/releases"},
                    "clean_paths": [f"{root}/hosts/{{host}}/disk/logs"],
                    **({"depends_on": [database["name"]]} if database else {}),
                }
            ],
            **({"databases": [database]} if database else {}),
        },
        "notify": {
            "receivers": [
                {
                    "name": "oncall",
                    "urls": [
                        f"mailto://127.0.0.1:{smtp_port}"
                        "?from=lazarus@sandbox.test&to=oncall@sandbox.test",
                        f"mmost://127.0.0.1:{http_port}/sandbox-chat",
                    ],
                }
            ],
            # the on-call hears each change at once: new, escalated, resolved
            "route": {"receiver": "oncall", "group_wait": "0s", "group_interval": "1s"},
        },
        "watch": {"interval": "5s"},
        "playbooks": {
            "dir": str(PLAYBOOKS),
            # the sandbox's power switch, used the way an IPMI or cloud API command would be
            "out_of_band": [
                sys.executable,
                "-m",
                "lazarus.cli",
                "sandbox",
                "power",
                "{host}",
                "cycle",
                "--dir",
                str(root),
            ],
        },
        "state": {"path": "state/lazarus.db"},
    }


def write_yaml(path: Path, data: dict[str, Any]) -> None:
    path.write_text(yaml.safe_dump(data, sort_keys=False, width=200))
