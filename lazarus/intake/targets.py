"""Which inventory host and service an alert is about: labels select, the inventory decides.

``host`` (or Prometheus's ``instance``, ``address:port``) must name an inventory host by name or
address, and ``service`` (or ``job``), when given, a service that runs on that host. Anything
else is refused with the reason: a label never names a new target.
"""

from __future__ import annotations

from lazarus.config import Inventory
from lazarus.errors import LazarusError


class UnknownTarget(LazarusError):
    """The alert's labels name no host (or service) of the inventory."""


def resolve_target(inventory: Inventory, labels: dict[str, str]) -> tuple[str, str]:
    """(host name, service name or "") of the inventory that ``labels`` point at."""
    host = _host(inventory, labels)
    service = labels.get("service") or ""
    if not service and labels.get("job") in {s.name for s in inventory.services}:
        service = labels["job"]
    if service:
        known = [s for s in inventory.services if s.name == service]
        if not known:
            raise UnknownTarget(f"label service={service!r} is not a service of the inventory")
        if host not in {h.name for h in inventory.hosts_of(known[0])}:
            raise UnknownTarget(f"service {service!r} does not run on host {host!r}")
    return host, service


def _host(inventory: Inventory, labels: dict[str, str]) -> str:
    if "host" in labels:
        wanted, label = labels["host"], "host"
    elif "instance" in labels:
        wanted, label = labels["instance"].rsplit(":", 1)[0].strip("[]"), "instance"
    else:
        raise UnknownTarget("the alert has neither a host nor an instance label")
    for host in inventory.hosts:
        if wanted in (host.name, host.address):
            return host.name
    raise UnknownTarget(f"label {label}={labels[label]!r} is not a host of the inventory")
