"""A collection cycle on local files: cursors in the store, per-file errors, config, anomalies."""

from __future__ import annotations

from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from lazarus.config import Config, LogSettings
from lazarus.logcollect import FileLines, LogBatch, Offsets, collect, feed, new_error_anomalies
from lazarus.logmine import LogSignals, state
from lazarus.store import Store


def config(
    tmp_path: Path, files: list[dict[str, Any]], hosts: tuple[str, ...] = ("h1", "h2"), **logs: Any
) -> Config:
    """Two web hosts on loopback whose service logs ``files``; ``logs`` are further settings."""
    service = {"name": "web", "hosts": {"role": "web"}, "probe": {"http": "http://{host}/"}}
    return Config.model_validate(
        {
            "inventory": {
                "ssh": {"key": "id"},
                "hosts": [
                    {"name": n, "address": "127.0.0.1", "labels": {"role": "web"}} for n in hosts
                ],
                "services": [service],
            },
            "logs": {"files": files, **logs},
            "base_dir": tmp_path,
        }
    )


def append(path: Path, text: str) -> None:
    with path.open("a") as f:
        f.write(text)


def test_log_settings_defaults_and_sizes() -> None:
    assert LogSettings().files == [] and LogSettings().budget == 256 * 1024
    assert LogSettings(budget="1MB", max_line="2KB").max_line == 2048
    with pytest.raises(ValidationError, match="smaller than budget"):
        LogSettings(budget=2048, max_line=4096)
    with pytest.raises(ValidationError, match="not a size"):
        LogSettings(budget="lots")
    with pytest.raises(ValidationError, match="<Content>"):
        LogSettings(files=[{"service": "web", "path": "/x", "format": "<Level>"}])


def test_cycles_read_new_lines_per_host_and_keep_cursors_in_the_store(tmp_path: Path) -> None:
    for h in ("h1", "h2"):
        (tmp_path / f"{h}.log").write_text("before\n")
    cfg = config(tmp_path, [{"service": "web", "path": f"{tmp_path}/{{host}}.log", "local": True}])
    with _store(tmp_path) as store:
        assert collect(cfg, store).lines("h1", "web") == []
        append(tmp_path / "h1.log", "one\ntwo\n")
        append(tmp_path / "h2.log", "three\n")
        batch = collect(cfg, store)
    assert batch.lines("h1", "web") == ["one", "two"] and batch.lines("h2", "web") == ["three"]
    with _store(tmp_path) as store:  # a new process resumes where the last one stopped
        assert collect(cfg, store).lines("h1", "web") == []
        rows = {(s.host, s.path): s for s in Offsets(store).status()}
    assert rows[("h1", f"{tmp_path}/h1.log")].cursor.offset == 15


def test_one_missing_file_is_recorded_and_the_others_are_read(tmp_path: Path) -> None:
    (tmp_path / "h1.log").write_text("")
    cfg = config(tmp_path, [{"service": "web", "path": f"{tmp_path}/{{host}}.log", "local": True}])
    with _store(tmp_path) as store:
        collect(cfg, store)
        (tmp_path / "h1.log").write_text("fine\n")
        batch = collect(cfg, store)
        errors = {s.host: s.error for s in Offsets(store).status()}
    assert batch.lines("h1", "web") == ["fine"]
    assert [f.host for f in batch.errors] == ["h2"] and "cannot open" in errors["h2"]
    assert errors["h1"] == ""


def test_a_file_of_an_unknown_service_is_an_error_not_a_crash(tmp_path: Path) -> None:
    cfg = config(tmp_path, [{"service": "db", "path": "/nowhere", "local": True}])
    with _store(tmp_path) as store:
        batch = collect(cfg, store)
    assert [f.error for f in batch.files] == ["no service 'db' in inventory"]


def test_new_error_template_after_warmup_becomes_one_anomaly_per_instance(tmp_path: Path) -> None:
    fmt = "<Level> <Content>"
    path = tmp_path / "signals.json"

    def cycle(at: float, lines: dict[str, list[str]]) -> list:
        signals = state.load(LogSignals, path)
        signals.warmup_s = 60
        batch = LogBatch(at, [FileLines(h, "web", "/x", fmt, ls) for h, ls in lines.items()])
        feed(signals, batch)
        found = new_error_anomalies(signals, batch)
        state.save(signals, path)
        return found

    assert cycle(1000, {"h1": ["INFO started", "ERROR disk slow"], "h2": ["INFO started"]}) == []
    assert cycle(1100, {"h1": ["INFO request done 5"], "h2": ["INFO request done 7"]}) == []
    found = cycle(1200, {"h1": ["ERROR db connection refused to 10.0.0.7"], "h2": ["INFO x"]})
    assert [(a.host, a.service, a.symptom, a.severity) for a in found] == [
        ("h1", "web", "log_new_error", "warning")
    ]
    assert "db connection refused to <*>" in found[0].summary
    assert cycle(1300, {"h1": ["ERROR db connection refused to 10.0.0.8"]}) == []  # known now


def _store(tmp_path: Path) -> closing[Store]:
    return closing(Store(tmp_path / "state.db"))


def test_public_face_is_exactly_all() -> None:
    import lazarus.logcollect as logcollect

    public = {n for n in dir(logcollect) if not n.startswith("_")}
    incidental = {"anomalies", "cycle", "journal", "offsets", "rates", "tail", "annotations"}
    assert set(logcollect.__all__) == public - incidental
