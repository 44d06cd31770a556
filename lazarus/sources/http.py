"""HTTP health probes, concurrently, each with its own timeout (sources.probes picks the kind)."""

from __future__ import annotations

import time
from dataclasses import dataclass

import httpx

from lazarus.model import Observation


@dataclass(frozen=True)
class ProbeTarget:
    host: str
    service: str
    url: str
    timeout: float
    expect_status: int


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
    except httpx.ConnectTimeout:  # nothing answered the connect: the host, not the service
        ok, detail = False, f"unreachable: no answer to connect within {target.timeout:g}s"
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
"""Probes at once (sources.probes.check_all). A hung target holds its thread for the whole
timeout, so the pool is sized for many of them: with 32 threads, 100 hung of 1,000 targets
took four timeouts in a row (bench/watch_cost.py); with 256, one. Threads waiting on sockets
cost little; on loopback, where the probes are CPU-bound, 256 cost about the same as 32."""


Client = httpx.Client


def client(workers: int = WORKERS) -> httpx.Client:
    """One pooled client for a cycle's probes, sized for ``workers`` at once."""
    return httpx.Client(limits=httpx.Limits(max_connections=workers))


def _reason(exc: Exception) -> str:
    return str(exc) or type(exc).__name__
