"""Prometheus HTTP API: instant and range queries into Samples.

Errors are the API's own words (bad PromQL, unreachable server) raised as SourceError with the
query named, so a broken query in the config reads as such and not as a flapping service.
"""

from __future__ import annotations

from typing import Any

import httpx

from lazarus.errors import LazarusError
from lazarus.model import Sample


class SourceError(LazarusError):
    """A metrics source did not answer, or refused the query."""


def query(
    url: str, promql: str, *, series: str, timeout: float = 5.0, at: float | None = None
) -> list[Sample]:
    """Instant query: one Sample per result vector element, named ``series``."""
    params: dict[str, Any] = {"query": promql}
    if at is not None:
        params["time"] = at
    data = _get(url, "/api/v1/query", params, timeout, promql)
    return [
        Sample(series, _labels(r["metric"]), float(r["value"][1]), float(r["value"][0]))
        for r in data["result"]
    ]


def query_range(
    url: str,
    promql: str,
    *,
    series: str,
    start: float,
    end: float,
    step: float,
    timeout: float = 10.0,
) -> list[Sample]:
    """Range query: every point of every result matrix element, oldest first per series."""
    params = {"query": promql, "start": start, "end": end, "step": step}
    data = _get(url, "/api/v1/query_range", params, timeout, promql)
    return [
        Sample(series, _labels(r["metric"]), float(v), float(t))
        for r in data["result"]
        for t, v in r["values"]
    ]


def _get(url: str, path: str, params: dict[str, Any], timeout: float, promql: str) -> Any:
    try:
        response = httpx.get(url.rstrip("/") + path, params=params, timeout=timeout)
    except httpx.HTTPError as exc:
        raise SourceError(f"prometheus {url}: {type(exc).__name__}: {exc}") from None
    try:
        body = response.json()
    except ValueError:
        raise SourceError(f"prometheus {url}: HTTP {response.status_code}, not JSON") from None
    if body.get("status") != "success":
        raise SourceError(f"prometheus {url}: query {promql!r}: {body.get('error', body)}")
    return body["data"]


def _labels(metric: dict[str, str]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(metric.items()))
