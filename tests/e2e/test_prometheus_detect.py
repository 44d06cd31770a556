"""Statistical detection on a real Prometheus (Debian's 2.42) scraping the sandbox services.

Prometheus scrapes every sandbox service's /metrics each second, labelling the targets with
their host and service as a scrape config would. Cycles of the detect core run on its instant
queries, one cycle per new scrape, so counts of cycles stand for scrape intervals.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from lazarus.commands import backtest
from lazarus.config import Config, PrometheusSource, load_config
from lazarus.detect.cycle import detect_series
from lazarus.detect.skew import skew_anomalies
from lazarus.model import Anomaly, Sample
from lazarus.sources import prometheus
from lazarus.sources.clock import OFFSET, RTT, read_clocks
from lazarus.store import Store
from tests.e2e.conftest import variant

pytestmark = pytest.mark.e2e

PROMETHEUS = Path("/usr/bin/prometheus")
PORT = 9391
WARMUP = 10  # points before a series may score; the peers test's 8 cycles stay inside it
# the error-fault test waits out this shorter warm-up before its step in demo_error (after 5
# points, the watch test's drop in ``up`` showed only as a peer outlier, and a loaded machine's
# backtest found nothing: they keep WARMUP)
STEP_WARMUP = 5
QUERIES = {"up": 'up{job="demo"}', "demo_error": 'demo_fault{mode="error"}'}


@pytest.fixture(scope="module")
def prom(sandbox: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Prometheus on 127.0.0.1:9391, scraping the sandbox every second; stopped by PID."""
    if not PROMETHEUS.exists():
        pytest.skip("needs /usr/bin/prometheus (apt-get install prometheus)")
    root = tmp_path_factory.mktemp("prometheus")
    targets = [
        {"targets": [f"{h.address}:{h.service_port}"], "labels": {"host": h.name, "service": "web"}}
        for h in sandbox.hosts
    ]
    config = {
        "global": {"scrape_interval": "1s", "scrape_timeout": "800ms"},
        "scrape_configs": [{"job_name": "demo", "static_configs": targets}],
    }
    (root / "prometheus.yml").write_text(yaml.safe_dump(config))
    url = f"http://127.0.0.1:{PORT}"
    with open(root / "prometheus.log", "wb") as out:
        proc = subprocess.Popen(
            [
                str(PROMETHEUS),
                f"--config.file={root / 'prometheus.yml'}",
                f"--storage.tsdb.path={root / 'data'}",
                f"--web.listen-address=127.0.0.1:{PORT}",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 60
        while len(_query(url, "up", 'up{job="demo"} == 1')) < len(sandbox.hosts):
            if proc.poll() is not None or time.monotonic() > deadline:
                log = (root / "prometheus.log").read_text()[-2000:]
                pytest.fail(f"prometheus did not scrape every target:\n{log}")
            time.sleep(0.5)
        yield url
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)


def _query(url: str, name: str, promql: str) -> list[Sample]:
    try:
        return prometheus.query(url, promql, series=name)
    except prometheus.SourceError:
        return []


def prom_config(sandbox: Any, url: str, name: str, tmp_path: Path, warmup: int = WARMUP) -> Config:
    path = variant(
        sandbox,
        name,
        {
            "sources": [{"kind": "prometheus", "url": url, "queries": QUERIES}],
            "detectors.anomaly": [{"series": "*", "warmup": warmup, "season": None}],
            "recovery": {"enabled": False},
            "state.path": str(tmp_path / "state.db"),
        },
    )
    return load_config(path)


class Cycles:
    """Watch-like cycles of the detect core on the Prometheus source, one per new scrape."""

    def __init__(self, config: Config):
        self.config = config
        self.last_scrape = 0.0

    def run(self) -> tuple[list[Sample], list[Anomaly]]:
        (source,) = self.config.sources
        assert isinstance(source, PrometheusSource)
        self.last_scrape = _wait_scrape(source.url, self.last_scrape)
        samples = [
            s
            for name, promql in source.queries.items()
            for s in prometheus.query(source.url, promql, series=name)
        ]
        store = Store(self.config.path(self.config.state.path))
        try:
            return samples, detect_series(store, self.config, samples)
        finally:
            store.close()


def _wait_scrape(url: str, after: float) -> float:
    """Once every target was scraped after ``after``: the time of the newest scrape (so the
    caller's next wait spans one whole scrape round). Bounded wait."""
    for _ in range(100):
        times = [s.value for s in _query(url, "t", 'timestamp(up{job="demo"})')]
        if times and min(times) > after:
            return max(times)
        time.sleep(0.1)
    raise AssertionError("prometheus scraped nothing new for 10 s")


def value(samples: list[Sample], series: str, host: str) -> float | None:
    found = [s.value for s in samples if s.series == series and s.label("host") == host]
    return found[0] if found else None


def test_an_error_fault_is_detected_from_prometheus_within_two_scrapes(
    healthy_sandbox: Any, prom: str, tmp_path: Path
) -> None:
    cycles = Cycles(prom_config(healthy_sandbox, prom, "prom-detect", tmp_path, STEP_WARMUP))
    for _ in range(STEP_WARMUP + 5):
        samples, anomalies = cycles.run()
        assert len(samples) == 2 * len(healthy_sandbox.hosts)
        assert anomalies == []  # steady series: nothing, in warm-up or after
    healthy_sandbox.fault("web-2", "error")
    seen_bad = None
    for i in range(10):
        samples, anomalies = cycles.run()
        if seen_bad is None and value(samples, "demo_error", "web-2") == 1.0:
            seen_bad = i
        if anomalies:
            break
    assert seen_bad is not None, "the fault never showed in Prometheus"
    assert i - seen_bad <= 1  # detected in the cycle of the first bad sample or the next
    assert [(a.host, a.service, a.symptom) for a in anomalies] == [
        ("web-2", "web", "demo_error_anomaly")
    ]


def test_a_host_unlike_its_peers_from_the_first_scrape_is_a_peer_outlier(
    healthy_sandbox: Any, prom: str, tmp_path: Path
) -> None:
    """Wrong from the start, web-2 is its own normal to the ensemble (still warming up); only
    its peers show it: an outlier once its streak reaches ``for`` (3) cycles, then quiet."""
    healthy_sandbox.fault("web-2", "error")
    cycles = Cycles(prom_config(healthy_sandbox, prom, "prom-peers", tmp_path))
    seen_bad, found = None, []
    for i in range(8):
        samples, anomalies = cycles.run()
        if seen_bad is None and value(samples, "demo_error", "web-2") == 1.0:
            seen_bad = i
        found += [(i, a.host, a.symptom, a.summary) for a in anomalies]
    assert seen_bad is not None and seen_bad <= 3, "the fault never showed in Prometheus"
    assert [f[:3] for f in found] == [(seen_bad + 2, "web-2", "demo_error_peer_outlier")]
    assert found[0][3] == "demo_error on web-2 is 1 while its 2 peers' median is 0"


@pytest.mark.usefixtures("prefect_harness")
def test_watch_runs_carry_the_state_and_report_a_dead_target(
    healthy_sandbox: Any, prom: str, tmp_path: Path
) -> None:
    """Separate watch flow runs: the warm-up only ends if each run continues the last one's
    state; then a killed service shows as ``up`` dropping and its series going absent."""
    from flows.watch import watch

    config = prom_config(healthy_sandbox, prom, "prom-watch", tmp_path)
    path = str(config.base_dir / "prom-watch.yaml")
    for _ in range(WARMUP + 3):
        assert watch(path)["anomalies"] == 0
    healthy_sandbox.fault("web-3", "kill")
    wanted = {"web@web-3/up_anomaly", "web@web-3/demo_error_absent"}
    active: set[str] = set()
    runs = 0
    while not wanted <= active and runs < 10:
        watch(path)
        runs += 1
        store = Store(config.path(config.state.path))
        try:
            active = {i.fingerprint for i in store.active()}
        finally:
            store.close()
    assert wanted <= active, active
    # absent from the 3rd run without its series on; a scrape or two may pass before that
    assert runs <= 3 + 3


def test_sandbox_clocks_agree_within_the_round_trip(healthy_sandbox: Any) -> None:
    """The sandbox hosts share this kernel's clock: offset ~0, within the RTT bound, no skew."""
    config = load_config(healthy_sandbox.config_path)
    got = read_clocks(config)
    offsets = {s.label("host"): s.value for s in got if s.series == OFFSET}
    rtts = {s.label("host"): s.value for s in got if s.series == RTT}
    assert set(offsets) == set(rtts) == {h.name for h in healthy_sandbox.hosts}
    for host, offset in offsets.items():
        assert 0 < rtts[host] < 1.0
        assert abs(offset) <= rtts[host] / 2 + 1e-3  # + date's own rounding
    assert skew_anomalies(got, config.detectors.clock.max_offset) == []
    # A partitioned host is skipped, not fatal: its series go absent for the detectors.
    healthy_sandbox.fault("web-1", "partition")
    assert {s.label("host") for s in read_clocks(config)} == {"web-2", "web-3"}


@pytest.mark.usefixtures("prefect_harness")
def test_backtest_replays_a_fault_from_prometheus_history(
    healthy_sandbox: Any, prom: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """History with a fault in it, replayed by `lazarus backtest` at the scrape step."""
    config = prom_config(healthy_sandbox, prom, "prom-backtest", tmp_path)
    start = last = _wait_scrape(prom, 0.0)
    for _ in range(WARMUP + 8):
        last = _wait_scrape(prom, last)
    healthy_sandbox.fault("web-1", "error")
    for _ in range(3):
        last = _wait_scrape(prom, last)
    parser = argparse.ArgumentParser()
    backtest.add_parsers(parser.add_subparsers())
    argv = ["backtest", "-c", str(config.base_dir / "prom-backtest.yaml"), "--step", "1s"]
    args = parser.parse_args([*argv, "--from", str(start), "--to", str(last)])
    assert backtest.run(args) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[1] for line in lines] == ["web@web-1/demo_error_anomaly"]
    # the same replay as the backtest flow a person runs from the Prefect UI
    from flows.backtest import backtest as backtest_flow

    hours = (time.time() - start) / 3600
    config_path = str(config.base_dir / "prom-backtest.yaml")
    assert backtest_flow(config_path, hours=hours, step_seconds=1.0) == 1
