"""Every watched instance probed once a cycle, whatever its probe kind, all at once.

An instance is a service on one of its hosts, or a database on its own host
(``Inventory.watched``). The kinds: ``http`` (sources.http), ``tcp`` (sources.tcp),
``postgres`` (sources.postgres, connect + ``SELECT 1``) and ``command`` (an argv over SSH,
exit 0 = healthy). Each failure's detail starts with a word the detectors read:
``refused``/``unreachable``/``down`` (nothing answers: service_down) or ``timeout``/
``status``/``error`` (it answers badly: service_unhealthy).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from lazarus.commandline import fill_argv
from lazarus.config import Host, Inventory, Probe
from lazarus.errors import CommandTimeout, LazarusError, TransientError
from lazarus.model import Observation
from lazarus.remote import Executor
from lazarus.secrets import is_reference
from lazarus.sources import http, postgres, tcp

WORKERS = http.WORKERS


@dataclass(frozen=True)
class Instance:
    """One thing to probe: ``service`` (or database) on ``host`` with its probe."""

    host: Host
    service: str
    probe: Probe

    def fill(self, template: str) -> str:
        return template.format(host=self.host.name, address=self.host.address)


def instances(inventory: Inventory) -> list[Instance]:
    """One instance per (service, host it runs on) and per database on its host."""
    return [
        Instance(host, service.name, service.probe)
        for service in inventory.watched()
        for host in inventory.hosts_of(service)
    ]


def check(
    instance: Instance, *, client: http.Client | None = None, executor: Executor | None = None
) -> Observation:
    """Probe ``instance`` once; any failure is an Observation with its reason, never raised."""
    started = time.time()
    probe = instance.probe
    if probe.http is not None:
        target = http.ProbeTarget(
            instance.host.name,
            instance.service,
            instance.fill(probe.http),
            probe.timeout,
            probe.expect_status,
        )
        return http.probe(target, client)
    if probe.tcp is not None:
        address, _, port = instance.fill(probe.tcp).rpartition(":")
        detail = tcp.connect_detail(address, int(port), probe.timeout)
        ok, detail = not detail, detail or "ok"
    elif probe.postgres is not None:
        ok, detail = postgres.select_one(_dsn(instance, probe.postgres), probe.timeout)
    else:
        ok, detail = _command(instance, executor)
    return Observation(
        host=instance.host.name,
        service=instance.service,
        ok=ok,
        detail=detail,
        at=started,
        latency_s=time.time() - started,
    )


def check_all(
    targets: Sequence[Instance], *, executor: Executor | None = None, workers: int = WORKERS
) -> list[Observation]:
    """Probe every instance at once, so a cycle costs the slowest probe, not the sum."""
    if not targets:
        return []
    with (
        http.client(workers) as client,
        ThreadPoolExecutor(max_workers=min(workers, len(targets))) as pool,
    ):
        return list(pool.map(lambda t: check(t, client=client, executor=executor), targets))


def _dsn(instance: Instance, dsn: str) -> str:
    return dsn if is_reference(dsn) else instance.fill(dsn)


def _command(instance: Instance, executor: Executor | None) -> tuple[bool, str]:
    if executor is None:
        return False, "error: a command probe needs SSH, and this run has no executor"
    host = instance.host
    try:
        argv = fill_argv(
            instance.probe.command or [], {"host": host.name, "address": host.address}, host.name
        )
        result = executor.run(host, argv, timeout=instance.probe.timeout)
    except CommandTimeout:
        return False, f"timeout: the command did not finish within {instance.probe.timeout:g}s"
    except TransientError as exc:
        return False, f"unreachable: {exc}"
    except LazarusError as exc:
        return False, f"error: {type(exc).__name__}: {exc}"
    if result.ok:
        return True, "ok"
    return False, f"down: {argv[0]} exited {result.exit_code}"
