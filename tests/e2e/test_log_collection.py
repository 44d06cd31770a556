"""Log collection over the sandbox's real sshd: incremental reads, rotation, truncation, hostile
lines, the byte budget, per-file failures, and a new error template becoming an anomaly."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from lazarus.config import AnomalySettings, Config, LogSettings
from lazarus.logcollect import LogBatch, Offsets, collect
from lazarus.store import Store

pytestmark = pytest.mark.e2e

HOSTS = ("web-1", "web-2", "web-3")


class Tailer:
    """collect() over SSH on the sandbox config, with files of the test's own."""

    def __init__(self, config: Config, folder: Path, **logs: Any):
        self.folder = folder
        files = [{"service": "web", "path": f"{folder}/{{host}}.log"}]
        settings = LogSettings.model_validate({"files": files, **logs})
        self.config = config.model_copy(update={"logs": settings})
        self.store = Store(folder / "state.db")

    def log(self, host: str) -> Path:
        return self.folder / f"{host}.log"

    def append(self, host: str, data: bytes | str) -> None:
        with self.log(host).open("ab") as f:
            f.write(data.encode() if isinstance(data, str) else data)

    def cycle(self) -> LogBatch:
        return collect(self.config, self.store)

    def close(self) -> None:
        self.store.close()


@pytest.fixture
def tailer(config: Config, tmp_path: Path) -> Iterator[Tailer]:
    t = Tailer(config, tmp_path)
    for host in HOSTS:
        t.log(host).write_text("history before lazarus\n")
    try:
        yield t
    finally:
        t.close()


def test_appended_lines_are_read_once_each_from_every_host(tailer: Tailer) -> None:
    first = tailer.cycle()
    assert first.errors == [] and all(f.lines == [] for f in first.files)  # starts at the end
    for host in HOSTS:
        tailer.append(host, f"{host} one\n{host} two\n{host} half")
    second = tailer.cycle()
    for host in HOSTS:
        assert second.lines(host, "web") == [f"{host} one", f"{host} two"]
    tailer.append("web-2", " done\n")
    third = tailer.cycle()
    assert third.lines("web-2", "web") == ["web-2 half done"]
    assert third.lines("web-1", "web") == [] and third.lines("web-3", "web") == []


def test_rotation_and_truncation_start_the_file_again(tailer: Tailer) -> None:
    tailer.cycle()
    tailer.append("web-1", "before rotation\n")
    assert tailer.cycle().lines("web-1", "web") == ["before rotation"]
    tailer.append("web-1", "late in the old file\n")
    tailer.log("web-1").rename(tailer.folder / "web-1.log.1")  # mv + a new file
    tailer.append("web-1", "after rotation\n")
    rotated = tailer.cycle()
    web1 = next(f for f in rotated.files if f.host == "web-1")
    assert web1.rotated and web1.lines == ["late in the old file", "after rotation"]
    tailer.log("web-3").rename(tailer.folder / "elsewhere.log")  # rotated to another name
    tailer.append("web-3", "web-3 new file\n")
    web3 = next(f for f in tailer.cycle().files if f.host == "web-3")
    assert web3.rotated and web3.lines == ["web-3 new file"] and not web3.error
    with tailer.log("web-2").open("w") as f:  # truncated in place, then written again
        f.write("after truncation\n")
    truncated = tailer.cycle()
    web2 = next(f for f in truncated.files if f.host == "web-2")
    assert web2.truncated and not web2.rotated and web2.lines == ["after truncation"]


def test_megabyte_line_and_binary_garbage_do_not_break_the_cycle(tailer: Tailer) -> None:
    tailer.cycle()
    garbage = bytes(range(256)) * 64 + b"\n\x1b[31mERROR\x1b[0m colored\n"
    tailer.append("web-1", b"good 1\n" + b"M" * (2 << 20) + b"\n" + garbage + b"good 2\n")
    tailer.append("web-2", "other host\n")
    lines: list[str] = []
    cut = 0
    for _ in range(20):  # 2 MB at the default 256 KB per cycle
        batch = tailer.cycle()
        assert batch.errors == []
        web1 = next(f for f in batch.files if f.host == "web-1")
        lines, cut = lines + web1.lines, cut + web1.cut
        if not web1.behind:
            break
    assert lines[0] == "good 1" and lines[1] == "M" * 4096 and lines[-1] == "good 2"
    assert "ERROR colored" in lines and cut >= 1
    assert all(len(line) <= 4096 for line in lines)
    rows = {s.host: s for s in Offsets(tailer.store).status()}
    assert rows["web-1"].cursor.offset == tailer.log("web-1").stat().st_size
    assert rows["web-1"].cut == cut


def test_budget_caps_a_cycle_and_the_next_continues(config: Config, tmp_path: Path) -> None:
    tailer = Tailer(config, tmp_path, budget=4096, max_line=512)
    try:
        tailer.log("web-1").write_text("")
        tailer.cycle()
        tailer.append("web-1", "".join(f"line {i:05} {'x' * 88}\n" for i in range(100)))
        seen: list[str] = []
        reads: list[int] = []
        for _ in range(10):
            web1 = next(f for f in tailer.cycle().files if f.host == "web-1")
            assert not web1.error
            seen, reads = seen + web1.lines, [*reads, web1.read]
            if not web1.behind:
                break
        assert len(reads) >= 3 and max(reads) <= 4096  # 10 KB in at most 4 KB per cycle
        assert [line[:10] for line in seen] == [f"line {i:05}" for i in range(100)]
    finally:
        tailer.close()


def test_one_failing_host_or_file_is_recorded_and_the_others_are_read(
    tailer: Tailer, healthy_sandbox: Any
) -> None:
    tailer.cycle()
    tailer.log("web-2").unlink()
    for host in ("web-1", "web-3"):
        tailer.append(host, f"{host} after\n")
    healthy_sandbox.fault("web-3", "partition")
    try:
        batch = tailer.cycle()
    finally:
        healthy_sandbox.fault("web-3", "heal")
    errors = {f.host: f.error for f in batch.errors}
    assert set(errors) == {"web-2", "web-3"} and "web-2.log" in errors["web-2"]
    assert batch.lines("web-1", "web") == ["web-1 after"]
    recorded = {s.host: s.error for s in Offsets(tailer.store).status()}
    assert recorded["web-2"] == errors["web-2"] and recorded["web-3"] and not recorded["web-1"]
    healed = tailer.cycle()  # web-3 resumes at its stored offset: nothing was lost
    assert healed.lines("web-3", "web") == ["web-3 after"]


# --- through the Prefect tasks, on the service's own log -------------------------------------


@pytest.mark.usefixtures("prefect_harness")
def test_new_error_template_after_a_fault_becomes_a_log_new_error_anomaly(
    healthy_sandbox: Any,
) -> None:
    from prefect import flow

    from lazarus.config import load_config
    from tasks.logs import collect_logs, log_anomalies
    from tests.e2e.conftest import variant

    sandbox = healthy_sandbox
    state_dir = sandbox.root / "state" / "logcollect"
    shutil.rmtree(state_dir, ignore_errors=True)
    files = [{"service": "web", "path": f"{sandbox.root}/hosts/{{host}}/web.log"}]
    path = variant(
        sandbox,
        "logcollect",
        {"state.path": f"{state_dir}/lazarus.db", "logs": {"files": files, "warmup": "1s"}},
    )
    config = load_config(path)

    @flow(name="log-cycle")
    def log_cycle() -> tuple[LogBatch, list]:
        batch = collect_logs(config)
        return batch, log_anomalies(config, batch)

    def web_log(host: str) -> Path:
        return sandbox.host_dir(host) / "web.log"

    log_cycle()  # first sighting: every file is read from its end
    for host in HOSTS:
        assert sandbox.health(host) == 200
    with web_log("web-1").open("a") as f:  # error lines while learning are not news
        f.write("ERROR cache warm-up failed for shard 3\n")
    batch, anomalies = log_cycle()
    assert anomalies == [] and any("GET /health" in line for line in batch.lines("web-2", "web"))
    time.sleep(1.5)  # past the warm-up
    sandbox.fault("web-2", "error")
    assert sandbox.health("web-2") == 500
    with web_log("web-2").open("a") as f:  # what a failing service writes beside its 500s
        f.write("ERROR upstream db connection refused after 3 retries\n")
    batch, anomalies = log_cycle()
    assert [(a.host, a.service, a.symptom, a.severity) for a in anomalies] == [
        ("web-2", "web", "log_new_error", "warning")
    ]
    assert "upstream db connection refused" in anomalies[0].summary
    assert (state_dir / "logsignals.json").exists()
    with closing(Store(state_dir / "lazarus.db")) as store:
        hosts = {s.host for s in Offsets(store).status() if s.cursor is not None}
    assert hosts == set(HOSTS)
    _, again = log_cycle()  # the same template is not news twice
    assert again == []


def test_a_burst_of_error_lines_becomes_one_log_error_spike(config: Config, tmp_path: Path) -> None:
    """Minute buckets on a stepped clock over the real sshd: a template web-2 logs now and then
    learns its rate; 40 lines of it in one minute open one spike, steady traffic opens none."""
    from lazarus.logcollect import error_spikes, feed
    from lazarus.logmine import LogSignals

    rate = AnomalySettings(series="log_error_rate", warmup=20, season=None)
    detectors = config.detectors.model_copy(update={"anomaly": [rate]})
    tuned = config.model_copy(update={"detectors": detectors})
    files = [{"service": "web", "path": f"{tmp_path}/{{host}}.log", "format": "<Level> <Content>"}]
    tailer = Tailer(tuned, tmp_path, files=files)
    signals = LogSignals()
    refused = "ERROR upstream db connection refused after 3 retries\n"
    t0 = 1_700_000_040.0
    found = []
    try:
        for minute in range(40):
            for host in HOSTS:
                tailer.append(
                    host,
                    "".join(f"INFO GET /health 200 in {minute % 7 + i} ms\n" for i in range(5)),
                )
            if minute % 9 == 4:
                tailer.append("web-2", refused)
            if minute == 34:
                tailer.append("web-2", refused * 40)
            batch = collect(tailer.config, tailer.store, clock=lambda at=t0 + minute * 60 + 1: at)
            assert batch.errors == []
            feed(signals, batch)
            found += [
                (minute, a) for a in error_spikes(signals, batch, tailer.store, tailer.config)
            ]
    finally:
        tailer.close()
    assert [(m, a.host, a.symptom) for m, a in found] == [(35, "web-2", "log_error_spike")]
    assert "40/min" in found[0][1].summary and "connection refused" in found[0][1].summary


@pytest.mark.usefixtures("prefect_harness")
def test_the_watch_log_stage_reports_a_log_error_spike(healthy_sandbox: Any) -> None:
    """Through the Prefect tasks on real time: the signals are seeded with one-second buckets
    (the bucket size is part of their saved state), so a minute of history takes seconds."""
    from prefect import flow

    from lazarus.config import load_config
    from lazarus.logcollect import signals_path
    from lazarus.logmine import LogSignals, state
    from tasks.logs import collect_logs, log_anomalies
    from tests.e2e.conftest import variant

    sandbox = healthy_sandbox
    state_dir = sandbox.root / "state" / "logspike"
    shutil.rmtree(state_dir, ignore_errors=True)
    files = [{"service": "web", "path": f"{sandbox.root}/hosts/{{host}}/web.log"}]
    rate = {"series": "log_error_rate", "warmup": 10, "season": None}
    path = variant(
        sandbox,
        "logspike",
        {
            "state.path": f"{state_dir}/lazarus.db",
            "logs": {"files": files, "warmup": "1h"},  # no log_new_error in this test
            "detectors.anomaly": [rate],
        },
    )
    config = load_config(path)
    state.save(LogSignals(bucket_s=1.0), signals_path(config))

    @flow(name="log-spike-cycle")
    def log_cycle() -> list:
        return log_anomalies(config, collect_logs(config))

    def refused(times: int) -> None:
        with (sandbox.host_dir("web-2") / "web.log").open("a") as f:
            f.write("ERROR upstream db connection refused after 3 retries\n" * times)

    found = []
    for i in range(8):  # history: the template now and then
        if i in (2, 5):
            refused(1)
        found += log_cycle()
        time.sleep(0.5)
    refused(40)
    for _ in range(6):  # the burst's bucket completes within a cycle or two
        found += log_cycle()
        time.sleep(0.5)
    assert [(a.host, a.service, a.symptom) for a in found] == [("web-2", "web", "log_error_spike")]
    assert "connection refused" in found[0].summary
