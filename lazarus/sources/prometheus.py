"""Prometheus HTTP API: instant and range queries into Samples.

Errors are the API's own words (bad PromQL, unreachable server) raised as SourceError with the
query named, so a broken query in the config reads as such and not as a flapping service.
"""

from __future__ import annotations

import re
from typing import Any

import httpx

from lazarus.errors import LazarusError
from lazarus.model import Sample

_CREDENTIALS = re.compile(r"(?<=://)[^/@\s]*@")  # user:password@ of a URL


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
    shown = without_credentials(url)  # errors are logged and stored: never a password
    try:
        response = httpx.get(url.rstrip("/") + path, params=params, timeout=timeout)
    except httpx.HTTPError as exc:
        reason = str(exc).replace(url, shown)
        raise SourceError(f"prometheus {shown}: {type(exc).__name__}: {reason}") from None
    try:
        body = response.json()
    except ValueError:
        raise SourceError(f"prometheus {shown}: HTTP {response.status_code}, not JSON") from None
    if body.get("status") != "success":
        raise SourceError(f"prometheus {shown}: query {promql!r}: {body.get('error', body)}")
    return body["data"]


def without_credentials(text: str) -> str:
    """``text`` with the ``user:password@`` of every URL in it left out."""
    return _CREDENTIALS.sub("", text)


def _labels(metric: dict[str, str]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(metric.items()))
