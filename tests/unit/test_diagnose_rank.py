"""Ranking on a real store: upstream incidents along the dependency graph, same-host failures,
peers, log signatures and changes, each turned into a ranked cause with its evidence."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lazarus.config import Config
from lazarus.diagnose import Change, DependencyGraph, diagnose
from lazarus.logmine import LogSignals
from lazarus.model import Anomaly, Incident, IncidentState
from lazarus.store import Store

T0 = 1_800_000_000.0
HOSTS = ["web-1", "web-2", "web-3", "db-1", "db-2"]


def make_config(services: list[dict[str, Any]]) -> Config:
    hosts = [
        {"name": h, "address": f"10.9.0.{i}", "labels": {"role": h[:-2], "name": h}}
        for i, h in enumerate(HOSTS, 11)
    ]
    probe = {"http": "http://{address}:8080/health"}
    return Config.model_validate(
        {
            "inventory": {
                "ssh": {"key": "k"},
                "hosts": hosts,
                "services": [{"probe": probe, **s} for s in services],
            }
        }
    )


SHOP = make_config(
    [
        {"name": "api", "hosts": {"role": "web"}, "depends_on": ["orders-db", "cache"]},
        {"name": "orders-db", "hosts": {"role": "db"}, "depends_on": ["storage"]},
        {"name": "storage", "hosts": {"name": "db-2"}},
        {"name": "cache", "hosts": {"name": "web-3"}},
        {"name": "worker", "hosts": {"role": "web"}, "labels": {"depends_on": "cache, api"}},
    ]
)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store(tmp_path / "state.db")
    yield s
    s.close()


def fail(store: Store, service: str, host: str, at: float, **kw: str) -> Incident:
    anomaly = Anomaly(
        host,
        service,
        kw.get("symptom", "service_down"),
        "critical",
        kw.get("summary", "health probe failed 2 times in a row: [Errno 111] Connection refused"),
        T0 + at,
    )
    return store.open_incident(anomaly)[0]


def names(diagnosis) -> list[tuple[str, str]]:
    return [(c.name, c.target) for c in diagnosis.causes]


# --- the graph ------------------------------------------------------------------------------


def test_graph_walks_depends_on_and_the_label_transitively() -> None:
    graph = DependencyGraph.of(SHOP)
    assert graph.upstream("api") == {"orders-db": 1, "cache": 1, "storage": 2}
    assert graph.upstream("worker") == {"cache": 1, "api": 1, "orders-db": 2, "storage": 3}
    assert graph.upstream("storage") == {}


def test_a_cycle_ends_the_walk() -> None:
    graph = DependencyGraph.of(
        make_config(
            [
                {"name": "a", "depends_on": ["b"]},
                {"name": "b", "depends_on": ["c"]},
                {"name": "c", "labels": {"depends_on": "a"}},  # config refuses a cycle; labels
            ]
        )
    )
    assert graph.upstream("a") == {"b": 1, "c": 2}


def test_a_line_names_a_dependency_by_service_host_or_address() -> None:
    graph = DependencyGraph.of(SHOP)
    deps = ["orders-db", "cache"]
    assert graph.named_in("connect to 10.9.0.14:5432 refused", deps) == "orders-db"
    assert graph.named_in("redis at web-3:6379: Connection refused", deps) == "cache"
    assert graph.named_in("connect to 10.9.0.141:5432 refused", deps) is None
    assert graph.named_in("dial tcp 10.9.0.99: refused", deps) is None


# --- ranking --------------------------------------------------------------------------------


def test_the_dependency_that_went_down_first_ranks_first(store: Store) -> None:
    fail(store, "orders-db", "db-1", at=0)
    api = fail(store, "api", "web-1", at=20)
    diagnosis = diagnose(store, SHOP, api)
    top = diagnosis.top
    assert (top.name, top.target) == ("dependency_down", "orders-db")
    assert top.confidence == pytest.approx(0.9)
    assert "orders-db@db-1 service_down" in top.evidence[0]
    assert "began 20s before this incident" in top.evidence[0]
    assert "Probable cause: dependency_down (orders-db), confidence 0.90" in diagnosis.text


def test_the_root_of_a_cascade_outranks_the_hop_between(store: Store) -> None:
    fail(store, "storage", "db-2", at=0)
    fail(store, "orders-db", "db-1", at=15)
    api = fail(store, "api", "web-1", at=30)
    ranked = diagnose(store, SHOP, api).causes
    assert [(c.name, c.target) for c in ranked[:2]] == [
        ("dependency_down", "storage"),
        ("dependency_down", "orders-db"),
    ]
    assert ranked[0].confidence > ranked[1].confidence


def test_a_dependency_that_failed_after_the_incident_ranks_low(store: Store) -> None:
    api = fail(store, "api", "web-1", at=0)
    fail(store, "orders-db", "db-1", at=60)
    dependency = next(c for c in diagnose(store, SHOP, api).causes if c.target == "orders-db")
    assert dependency.confidence == pytest.approx(0.3)
    assert "began 60s after this incident" in dependency.evidence[0]


def test_incidents_outside_the_window_and_off_the_graph_are_ignored(store: Store) -> None:
    fail(store, "orders-db", "db-1", at=-601)  # too early
    fail(store, "storage", "db-2", at=121)  # too late
    api = fail(store, "api", "web-1", at=0)
    # downstream of api, on another host: not a cause of api's trouble
    fail(store, "worker", "web-2", at=-10)
    assert names(diagnose(store, SHOP, api)) == [("local_fault", "api@web-1")]


def test_several_services_down_on_one_host_point_at_the_host(store: Store) -> None:
    fail(store, "worker", "web-2", at=0)
    fail(store, "cache", "web-2", at=2)  # cache is not meant to run here, but it failed there
    api = fail(store, "api", "web-2", at=5)
    diagnosis = diagnose(store, SHOP, api)
    host = next(c for c in diagnosis.causes if c.name == "host_fault")
    assert host.target == "web-2"
    assert host.confidence == pytest.approx(0.7)
    assert "2 other service(s) fail on web-2 too" in host.evidence[0]


def test_a_host_level_incident_ranks_the_host_first(store: Store) -> None:
    fail(store, "", "web-1", at=0, symptom="host_unreachable", summary="no SSH answer")
    api = fail(store, "api", "web-1", at=10)
    assert names(diagnose(store, SHOP, api))[0] == ("host_fault", "web-1")


def test_most_hosts_of_the_service_failing_is_service_wide(store: Store) -> None:
    fail(store, "api", "web-2", at=0)
    fail(store, "api", "web-3", at=1)
    api = fail(store, "api", "web-1", at=2)
    diagnosis = diagnose(store, SHOP, api)
    assert names(diagnosis)[0] == ("service_wide", "api")
    assert diagnosis.causes[0].confidence == pytest.approx(0.7)
    assert [p.host for p in diagnosis.evidence.peers if p.failing] == ["web-2", "web-3"]


def test_healthy_peers_make_it_a_local_fault(store: Store) -> None:
    api = fail(store, "api", "web-1", at=0)
    (cause,) = diagnose(store, SHOP, api).causes
    assert (cause.name, cause.confidence) == ("local_fault", 0.4)
    assert "its 2 peer host(s) are healthy" in cause.evidence[0]


def test_a_disk_full_line_of_the_target_ranks_disk_full_first(store: Store) -> None:
    orders = fail(store, "orders-db", "db-1", at=0)
    lines = [
        ("db-1", "orders-db", "LOG:  checkpoint starting: time"),
        (
            "db-1",
            "orders-db",
            "PANIC:  could not write to file pg_wal/xt.7: No space left on device",
        ),
        ("web-1", "api", "ERROR: No space left on device"),  # another host: not evidence here
    ]
    diagnosis = diagnose(store, SHOP, orders, lines=lines)
    top = diagnosis.top
    assert (top.name, top.target, top.confidence) == ("disk_full", "orders-db@db-1", 0.9)
    assert "signature no-space-left matched 1 line(s)" in top.evidence[0]
    assert "pg_wal/xt.7" in top.evidence[0]


def test_more_matching_lines_add_a_little_confidence(store: Store) -> None:
    orders = fail(store, "orders-db", "db-1", at=0)
    line = ("db-1", "orders-db", "write failed: No space left on device")
    once = diagnose(store, SHOP, orders, lines=[line]).top.confidence
    many = diagnose(store, SHOP, orders, lines=[line] * 10).top.confidence
    assert (once, many) == (0.9, 0.99)


def test_a_refused_connection_names_the_dependency_it_mentions(store: Store) -> None:
    api = fail(store, "api", "web-1", at=0)
    line = ("web-1", "api", "dial tcp 10.9.0.13:6379: connect: connection refused")  # web-3: cache
    refused = diagnose(store, SHOP, api, lines=[line]).top
    assert (refused.name, refused.target, refused.confidence) == (
        "dependency_refused",
        "cache",
        0.7,
    )


def test_mined_templates_count_as_lines_of_their_service(store: Store) -> None:
    signals = LogSignals()
    for i in range(3):
        signals.ingest("api", f"fd {i}: accept failed: Too many open files", T0 - 30 + i)
    api = fail(store, "api", "web-1", at=0)
    templates = signals.top_templates("api", T0 - 60, T0)
    diagnosis = diagnose(store, SHOP, api, lines=templates)
    assert (diagnosis.top.name, diagnosis.top.confidence) == ("fd_exhausted", 0.85)


def test_a_release_just_before_onset_is_a_bad_release(store: Store) -> None:
    api = fail(store, "api", "web-1", at=0)
    changes = [
        Change(T0 - 60, "api", "release", "api 2.4.1 -> 2.5.0"),
        Change(T0 - 30, "orders-db", "release", "not api's"),
        Change(T0 + 30, "api", "config", "after onset: not a cause"),
    ]
    diagnosis = diagnose(store, SHOP, api, changes=changes)
    top = diagnosis.top
    assert (top.name, top.target, top.confidence) == ("bad_release", "api", 0.77)
    assert top.evidence == ["release 60s before onset: api 2.4.1 -> 2.5.0"]
    assert len(diagnosis.evidence.changes) == 2


def test_same_evidence_same_ranking_and_a_readable_report(store: Store) -> None:
    fail(store, "orders-db", "db-1", at=0)
    fail(store, "cache", "web-3", at=3)
    api = fail(store, "api", "web-1", at=20)
    lines = [("web-1", "api", "redis web-3:6379 ECONNREFUSED")]
    first, second = (diagnose(store, SHOP, api, lines=lines) for _ in range(2))
    assert first.causes == second.causes
    assert names(first)[:3] == [
        ("dependency_down", "orders-db"),
        ("dependency_down", "cache"),
        ("dependency_refused", "cache"),
    ]
    report = first.markdown()
    assert report.startswith("# Diagnosis of incident #3: api@web-1/service_down\n")
    assert "| 1 | `dependency_down` | orders-db | 0.90 |" in report
    assert "- peer web-2: healthy" in report
    assert "\n" not in first.text


def test_what_healed_before_the_incident_began_is_no_cause_of_it(store: Store) -> None:
    """A dependency restarted minutes ago, and a release its service was since rolled back
    from (an incident of the same target resolved after it), explain nothing about a new fault."""
    db = fail(store, "orders-db", "db-1", at=-120)
    store.transition(db.id, IncidentState.RESOLVED, at=T0 - 110)
    earlier = fail(store, "api", "web-1", at=-60)
    store.transition(earlier.id, IncidentState.RESOLVED, at=T0 - 50)
    api = fail(store, "api", "web-1", at=0)
    changes = [Change(T0 - 65, "api", "release", "api 2.4.1 -> 2.5.0", "web-1")]
    diagnosis = diagnose(store, SHOP, api, changes=changes)
    assert names(diagnosis) == [("local_fault", "api@web-1")]
    # still failing when it began (resolved within the probes' failing streak): a cause
    store.transition(fail(store, "orders-db", "db-1", at=-20).id, IncidentState.RESOLVED, at=T0 - 1)
    assert names(diagnose(store, SHOP, api))[0] == ("dependency_down", "orders-db")


def test_a_host_metric_that_only_looked_unusual_does_not_outrank_a_release(store: Store) -> None:
    series = {"series": 'disk_used_ratio{host="web-1"}'}
    odd = Anomaly("web-1", "", "disk_used_ratio_anomaly", "warning", "0.1355", T0 - 200, series)
    store.open_incident(odd)
    api = fail(store, "api", "web-1", at=0)
    changes = [Change(T0 - 5, "api", "release", "api 2.4.1 -> 2.5.0", "web-1")]
    assert names(diagnose(store, SHOP, api, changes=changes))[:2] == [
        ("bad_release", "api"),
        ("host_fault", "web-1"),
    ]
