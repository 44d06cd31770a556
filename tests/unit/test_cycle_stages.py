"""The stages of one watch cycle, with every stage faked: what runs beside what."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace
from typing import Any

import pytest

import flows.watch as watch


def test_change_reads_run_beside_the_probes_and_end_before_correlation(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Reading release links and unit start times over SSH took ~1 s a cycle under load, after
    the probes: every incident's recover run started that much later."""
    probing, reading = threading.Event(), threading.Event()
    order: list[str] = []
    pool = ThreadPoolExecutor(1)

    def read_changes(config: Any) -> int:
        reading.set()
        assert probing.wait(5), "the probes waited for the change reads"
        order.append("changes read")
        return 0

    def probe(config: Any) -> list[Any]:
        probing.set()
        assert reading.wait(5), "the change reads waited for the probes"
        return []

    def correlate(*args: Any) -> Any:
        order.append("correlated")
        return SimpleNamespace(opened=[], closed=[], hosts_down=set())

    fakes = {
        "record_changes": SimpleNamespace(submit=lambda c: pool.submit(read_changes, c)),
        "probe_services": probe,
        "query_sources": lambda c: SimpleNamespace(samples=[], reads=[]),
        "reach_hosts": lambda c, seen: {},
        "collect_logs": lambda c: [],
        "log_reads": lambda logs: [],
        "detect": lambda *a: [],
        "log_anomalies": lambda c, logs: [],
        "check_databases": lambda c: [],
        "correlate": correlate,
        "dispatch": lambda c: [],
        "publish_board": lambda c: None,
        "emit_all": lambda *a: None,
        "settle": lambda d: 0,
        "publish_summary": lambda *a, **k: None,
        "send_heartbeat": lambda c: None,
        "shard_config": lambda config, shard, shards: config,
    }
    for name, fake in fakes.items():
        monkeypatch.setattr(watch, name, fake)
    counts = watch.cycle(SimpleNamespace(), "lazarus.yaml", 7, 0, 1, True, watch.Recoveries())
    assert counts["cycle"] == 7
    assert order == ["changes read", "correlated"]
    pool.shutdown()
