"""Log signals: per-template rate series, first sightings, templates around an onset."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from lazarus.logmine import LogSignals, state

T0 = 1_700_000_040.0  # a bucket boundary for 60 s buckets


def _steady(signals: LogSignals, service: str, minutes: int) -> None:
    for m in range(minutes):
        for i in range(3):
            signals.ingest(service, f"GET /api/orders/{m}{i} 200 in {i} ms", T0 + 60 * m + i)


def test_rates_are_a_series_matrix_per_service_and_template() -> None:
    signals = LogSignals(bucket_s=60, warmup_s=0)
    _steady(signals, "api", 5)
    for s in range(4):
        signals.ingest("api", "connection to orders-db refused", T0 + 240 + s, level="ERROR")
    signals.ingest("db", "checkpoint complete: wrote 12 buffers", T0 + 10)
    rates = signals.rates(end=T0 + 299, length=5)
    assert rates.values.shape == (3, 5)
    assert rates.starts[0] == T0 and rates.starts[-1] == T0 + 240
    by_name = {
        (svc, signals.miner.template(tid)): row
        for (svc, tid), row in zip(rates.names, rates.values, strict=True)
    }
    assert np.array_equal(by_name[("api", "GET <*> <*> in <*> <*>")], [3, 3, 3, 3, 3])
    assert np.array_equal(by_name[("api", "connection to orders-db refused")], [0, 0, 0, 0, 4])
    assert np.array_equal(
        by_name[("db", "checkpoint complete: wrote <*> buffers")], [1, 0, 0, 0, 0]
    )


def test_new_template_after_warmup_is_a_signal_once() -> None:
    signals = LogSignals(bucket_s=60, warmup_s=120)
    _steady(signals, "api", 4)
    signals.ingest("api", "startup banner v2", T0 + 1)  # inside warm-up: learning, no signal
    assert signals.take_new() == []
    signals.ingest("api", "disk full on /dev/sda1", T0 + 200)
    signals.ingest("api", "disk full on /dev/sdb1", T0 + 201)
    new = signals.take_new()
    assert [(n.service, n.template, n.error) for n in new] == [("api", "disk full on <*>", False)]
    assert signals.take_new() == []


def test_known_template_on_another_service_is_still_new_there() -> None:
    signals = LogSignals(warmup_s=0)
    signals.ingest("a", "worker 1 crashed with exit code 137", T0)
    signals.ingest("b", "worker 7 crashed with exit code 1", T0 + 5)
    assert [n.service for n in signals.take_new()] == ["a", "b"]


def test_top_templates_put_new_and_spiking_error_templates_first() -> None:
    signals = LogSignals(bucket_s=60, warmup_s=0)
    _steady(signals, "api", 10)
    for m in range(10):
        signals.ingest("api", "retrying request to cache", T0 + 60 * m + 30)
    for s in range(20):
        signals.ingest("api", "retrying request to cache", T0 + 540 + s)
        signals.ingest("api", f"connection to orders-db:{5432 + s} refused", T0 + 541 + s)
    top = signals.top_templates("api", T0 + 540, T0 + 599)
    assert top[0].template == "connection to orders-db:<*> refused"
    assert top[0].new and top[0].error
    spiking = next(t for t in top if t.template == "retrying request to cache")
    steady = next(t for t in top if t.template.startswith("GET"))
    assert spiking.spike > steady.spike
    assert top.index(spiking) < top.index(steady)


def test_signals_round_trip_through_state(tmp_path: Path) -> None:
    signals = LogSignals(bucket_s=30, warmup_s=0)
    _steady(signals, "api", 3)
    signals.ingest("api", "fatal: out of memory", T0 + 100)
    state.save(signals, tmp_path / "signals.json")
    again = state.load(LogSignals, tmp_path / "signals.json")
    assert again.bucket_s == 30
    before, after = signals.rates(T0 + 179, 6), again.rates(T0 + 179, 6)
    assert before.names == after.names and np.array_equal(before.values, after.values)
    again.take_new()
    again.ingest("api", "fatal: out of memory", T0 + 200)
    assert again.take_new() == []
    tid = again.miner.add("fatal: out of memory").template_id
    assert again.is_error(tid)


def test_rates_of_templates_merged_later_are_summed() -> None:
    signals = LogSignals(bucket_s=60, warmup_s=0)
    for i, user in enumerate(["ann", "bob", "cid", "dan"]):
        signals.ingest("sshd", f"session closed for user {user}", T0 + 60 * i)
    rates = signals.rates(end=T0 + 239, length=4)
    assert len(rates.names) == 1
    assert signals.miner.template(rates.names[0][1]) == "session closed for user <*>"
    assert np.array_equal(rates.values[0], [1, 1, 1, 1])


def test_error_level_comes_from_the_header_or_the_wording() -> None:
    signals = LogSignals(warmup_s=0)
    by_level = signals.ingest("api", "cache warmed in 3 ms", T0, level="error")
    by_words = signals.ingest("api", "Connection refused by 10.0.0.9", T0)
    plain = signals.ingest("api", "request served in 3 ms", T0)
    assert signals.is_error(by_level.template_id) and signals.is_error(by_words.template_id)
    assert not signals.is_error(plain.template_id)
