"""The sandbox's network: one namespace per host on a bridge, or loopback addresses.

Namespaces give each host its own address and a link that can be cut (partition). Interface
names are limited to 15 characters, hence the short ``lz<name>-<i>`` and ``lzbr-<name>``.
Inside a namespace name look-ups hang unless /etc/netns/<ns>/ has hosts and resolv.conf.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from lazarus.sandbox import _proc

_NETNS_ETC = Path("/etc/netns")


def namespace(name: str, index: int) -> str:
    """Namespace of host ``index`` (1-based); also the name of its veth end on the bridge."""
    return f"lz{name}-{index}"


def bridge(name: str) -> str:
    return f"lzbr-{name}"


def netns_available() -> bool:
    """True when network namespaces can be made here (root, and a kernel that allows it)."""
    probe = "lzprobe"
    try:
        _proc.run(["ip", "netns", "add", probe])
    except (RuntimeError, OSError):
        return False
    _proc.run(["ip", "netns", "del", probe], check=False)
    return True


def create(name: str, subnet: int, hosts: list[tuple[str, str]]) -> None:
    """Bridge with 10.<subnet>.0.1/24 and, per (host name, address), a namespace wired to it."""
    br = bridge(name)
    _proc.run(["ip", "link", "add", br, "type", "bridge"])
    _proc.run(["ip", "addr", "add", f"10.{subnet}.0.1/24", "dev", br])
    _proc.run(["ip", "link", "set", br, "up"])
    for index, (host, address) in enumerate(hosts, start=1):
        ns = namespace(name, index)
        _proc.run(["ip", "netns", "add", ns])
        _proc.run(["ip", "link", "add", ns, "type", "veth", "peer", "name", "eth0", "netns", ns])
        _proc.run(["ip", "link", "set", ns, "master", br, "up"])
        inside = exec_prefix(ns)
        _proc.run([*inside, "ip", "link", "set", "lo", "up"])
        _proc.run([*inside, "ip", "addr", "add", f"{address}/24", "dev", "eth0"])
        _proc.run([*inside, "ip", "link", "set", "eth0", "up"])
        _proc.run([*inside, "ip", "route", "add", "default", "via", f"10.{subnet}.0.1"])
        etc = _NETNS_ETC / ns
        etc.mkdir(parents=True, exist_ok=True)
        (etc / "hosts").write_text(f"127.0.0.1 localhost\n{address} {host}\n")
        (etc / "resolv.conf").write_text("nameserver 127.0.0.1\noptions timeout:1 attempts:1\n")


def set_link(name: str, index: int, up: bool) -> None:
    """Cut (down) or restore (up) host ``index``'s link to the bridge."""
    _proc.run(["ip", "link", "set", namespace(name, index), "up" if up else "down"])


def exec_prefix(ns: str) -> list[str]:
    """Prefix that runs a command inside namespace ``ns``."""
    return ["ip", "netns", "exec", ns]


def leftovers(name: str) -> list[str]:
    """Namespaces of a sandbox called ``name`` that exist now (e.g. after a crash)."""
    out = _proc.run(["ip", "netns", "list"], check=False)
    prefix = f"lz{name}-"
    found = [line.split()[0] for line in out.splitlines() if line.strip()]
    return [ns for ns in found if ns.startswith(prefix) and ns[len(prefix) :].isdigit()]


def pids_in(ns: str) -> list[int]:
    out = _proc.run(["ip", "netns", "pids", ns], check=False)
    return [int(p) for p in out.split() if p.isdigit()]


def destroy(name: str) -> None:
    """Remove every namespace and the bridge of sandbox ``name`` (processes must be gone)."""
    for ns in leftovers(name):
        _proc.run(["ip", "netns", "del", ns], check=False)
        shutil.rmtree(_NETNS_ETC / ns, ignore_errors=True)
    if bridge_exists(name):
        _proc.run(["ip", "link", "del", bridge(name)], check=False)


def bridge_exists(name: str) -> bool:
    return Path(f"/sys/class/net/{bridge(name)}").exists()
