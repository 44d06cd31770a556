"""HTTP health probes of every service instance, concurrently, each with its own timeout."""

from __future__ import annotations

import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import httpx

from lazarus.config import Inventory
from lazarus.model import Observation


@dataclass(frozen=True)
class ProbeTarget:
    host: str
    service: str
    url: str
    timeout: float
    expect_status: int


def probe_targets(inventory: Inventory) -> list[ProbeTarget]:
    """One probe per (service, host) the service runs on, with the URL filled in."""
    return [
        ProbeTarget(
            host=host.name,
            service=service.name,
            url=service.probe.http.format(host=host.name, address=host.address),
            timeout=service.probe.timeout,
            expect_status=service.probe.expect_status,
        )
        for service in inventory.services
        for host in inventory.hosts_of(service)
    ]


def probe(target: ProbeTarget, client: httpx.Client | None = None) -> Observation:
    """GET the target's URL once; any failure becomes an Observation with a reason, never raises.

    The detail starts with ``refused``, ``timeout``, ``status`` or ``error`` so detectors can
    tell a dead process from a hung or failing one.
    """
    started = time.time()
    own = client is None
    client = client or httpx.Client()
    try:
        response = client.get(target.url, timeout=target.timeout)
        ok = response.status_code == target.expect_status
        detail = f"status {response.status_code}" if not ok else "ok"
    except httpx.ConnectError as exc:
        ok, detail = False, f"refused: {_reason(exc)}"
    except httpx.TimeoutException:
        ok, detail = False, f"timeout: no answer within {target.timeout:g}s"
    except httpx.HTTPError as exc:
        ok, detail = False, f"error: {_reason(exc)}"
    finally:
        if own:
            client.close()
    return Observation(
        host=target.host,
        service=target.service,
        ok=ok,
        detail=detail,
        at=started,
        latency_s=time.time() - started,
    )


WORKERS = 256


def probe_all(targets: Sequence[ProbeTarget], *, workers: int = WORKERS) -> list[Observation]:
    """Probe every target at once, so a cycle costs the slowest probe, not the sum.

    A hung target holds its thread for the whole timeout, so the pool is sized for many of them:
    with 32 threads, 100 hung of 1,000 targets took four timeouts in a row (bench/watch_cost.py);
    with 256, one. Threads waiting on sockets cost little; on loopback, where the probes are
    CPU-bound, 256 cost about the same as 32.
    """
    if not targets:
        return []
    with (
        httpx.Client(limits=httpx.Limits(max_connections=workers)) as client,
        ThreadPoolExecutor(max_workers=min(workers, len(targets))) as pool,
    ):
        return list(pool.map(lambda t: probe(t, client), targets))


def _reason(exc: Exception) -> str:
    return str(exc) or type(exc).__name__
