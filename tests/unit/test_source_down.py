"""A source that fails N cycles in a row is one incident: raised once, labelled with the source
and its redacted error, resolved when it answers, and its series' silence is no flood."""

from __future__ import annotations

from pathlib import Path

from lazarus import symptoms
from lazarus.config import PrometheusSource
from lazarus.detect.sources import (
    SOURCE_DOWN,
    detect_sources,
    explained,
    log_reads,
    prometheus_read,
    ssh_metrics_reads,
)
from lazarus.incidents import close_quiet, close_returned, open_incidents
from lazarus.logcollect import FileLines, LogBatch
from lazarus.model import Anomaly, IncidentState
from lazarus.sources.ssh_metrics import Readings
from lazarus.store import Store

PROM = PrometheusSource(
    kind="prometheus", url="http://ops:hunter2@127.0.0.1:9090/", queries={"up": "up"}
)


def _cycles(reads_per_cycle, failures=3, down=()):
    streaks: dict[str, int] = {}
    out = []
    for reads in reads_per_cycle:
        anomalies, new = detect_sources(reads, streaks, failures, down=down, at=1.0)
        streaks = {**streaks, **new}
        out.append(anomalies)
    return out


def test_a_source_failing_n_cycles_in_a_row_is_source_down_with_its_redacted_error():
    failed = prometheus_read(PROM, "prometheus http://ops:hunter2@127.0.0.1:9090: ConnectError")
    said = _cycles([[failed]] * 4)
    assert [len(a) for a in said] == [0, 0, 1, 1]  # from the 3rd cycle on, while it fails
    anomaly = said[2][0]
    assert anomaly.symptom == SOURCE_DOWN and anomaly.severity == "critical"
    assert anomaly.fingerprint == "prometheus@127.0.0.1:9090/source_down" == failed.fingerprint
    assert anomaly.labels["source"] == "prometheus"
    assert anomaly.labels["url"] == "http://127.0.0.1:9090"
    assert "ConnectError" in anomaly.labels["error"]
    assert "hunter2" not in str(anomaly)
    assert not symptoms.missing(SOURCE_DOWN, anomaly.labels)


def test_one_good_read_ends_the_streak():
    bad, good = prometheus_read(PROM, "down"), prometheus_read(PROM)
    assert _cycles([[bad], [bad], [good], [bad], [bad]])[-1] == []


def test_ssh_metrics_fail_per_host_and_a_host_that_is_down_is_host_downs():
    found = Readings([], {"web-2": "CommandTimeout: no answer"})
    reads = ssh_metrics_reads(["web-1", "web-2"], found)
    said = _cycles([reads] * 3)[-1]
    assert [(a.host, a.service, a.labels["error"]) for a in said] == [
        ("web-2", "ssh_metrics", "CommandTimeout: no answer")
    ]
    assert _cycles([reads] * 3, down=["web-2"])[-1] == []


def test_logs_of_a_host_fail_while_any_of_its_files_fails():
    batch = LogBatch(
        1.0,
        [
            FileLines("web-1", "web", "/var/log/a.log", "", [], error="No such file"),
            FileLines("web-1", "web", "/var/log/b.log", "", ["x"]),
            FileLines("web-2", "web", "/var/log/a.log", "", ["y"]),
        ],
    )
    reads = {r.where: r for r in log_reads(batch)}
    assert reads["web-1"].error == "/var/log/a.log: No such file"
    assert reads["web-2"].ok


def test_the_series_of_a_failing_source_are_not_a_flood_of_absences():
    found = Readings([], {"web-2": "AuthFailed: denied"})
    reads = ssh_metrics_reads(["web-1", "web-2"], found)

    def absent(series: str, host: str) -> Anomaly:
        labels = {"host": host, "series": f'{series}{{host="{host}"}}'}
        return Anomaly(host, "", f"{series}_absent", "warning", "", 1.0, labels)

    anomalies = [absent("load1", "web-2"), absent("load1", "web-1"), absent("latency", "web-2")]
    kept = explained(anomalies, reads)
    assert [(a.symptom, a.host) for a in kept] == [
        ("load1_absent", "web-1"),
        ("latency_absent", "web-2"),
    ]


def test_source_down_is_opened_once_and_resolved_when_the_source_answers(tmp_path: Path):
    store = Store(tmp_path / "s.db")
    failed = prometheus_read(PROM, "ConnectError")
    for anomalies in _cycles([[failed]] * 5):
        open_incidents(store, anomalies)
    (incident,) = store.active()
    assert incident.symptom == SOURCE_DOWN
    assert close_returned(store, ["ssh_metrics@web-1/source_down"]) == []
    (closed,) = close_returned(store, [prometheus_read(PROM).fingerprint])
    assert closed.state is IncidentState.RESOLVED and "answers again" in closed.reason
    assert store.active() == []


def test_a_source_removed_from_the_config_resolves_when_quiet(tmp_path: Path):
    store = Store(tmp_path / "s.db")
    open_incidents(store, _cycles([[prometheus_read(PROM, "down")]] * 3)[-1])
    assert len(close_quiet(store, now=10**10, after=600)) == 1


def test_the_shipped_routes_page_it(tmp_path: Path):
    """A source_down is critical: the sandbox's shipped route sends it to oncall, the README's
    example route to sms, as it would a service_down."""
    from lazarus.config import Notify
    from lazarus.notify.route import receivers_for
    from lazarus.sandbox.files import lazarus_config

    failed = prometheus_read(PROM, "ConnectError")
    (anomaly,) = _cycles([[failed]] * 3)[-1]
    store = Store(tmp_path / "s.db")
    (incident,) = open_incidents(store, [anomaly])
    shipped = Notify.model_validate(lazarus_config(tmp_path, [], 8080, 25, 80)["notify"])
    readme = Notify.model_validate(
        {
            "receivers": [{"name": n, "urls": ["json://x"]} for n in ("oncall", "sms")],
            "route": {
                "receiver": "oncall",
                "routes": [
                    {"matchers": ['severity="critical"'], "receiver": "sms", "continue": True}
                ],
            },
        }
    )
    assert shipped.route and receivers_for(shipped.route, incident.facts()) == ["oncall"]
    assert readme.route and receivers_for(readme.route, incident.facts()) == ["sms"]
