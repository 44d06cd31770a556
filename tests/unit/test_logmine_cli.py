"""`lazarus logs parse`: Loghub's structured CSV, one row per input line."""

from __future__ import annotations

import csv
from pathlib import Path

from lazarus.cli import main

FORMAT = "<Date> <Time> <Level> <Component>: <Content>"


def _write_log(path: Path) -> None:
    rows = [
        f"17/06/09 20:10:{i:02d} INFO spark.Executor: Running task {i}.0 in stage 0.0 (TID {i})"
        for i in range(6)
    ]
    rows.insert(
        3, "17/06/09 20:11:00 ERROR spark.Executor: Exception in task 3.0 in stage 0.0 (TID 3)"
    )
    rows.append("not a header line at all \x1b[31m\xff")
    path.write_bytes(
        "\r\n".join(rows).encode("utf-8", "surrogateescape").replace(b"\xc3\xbf", b"\xff") + b"\r\n"
    )


def _read(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def test_parse_writes_one_row_per_line(tmp_path: Path) -> None:
    log, out = tmp_path / "spark.log", tmp_path / "out.csv"
    _write_log(log)
    assert (
        main(["logs", "parse", "--input", str(log), "--format", FORMAT, "--output", str(out)]) == 0
    )
    rows = _read(out)
    assert [r["LineId"] for r in rows] == [str(i) for i in range(1, 9)]
    running = {r["EventId"] for i, r in enumerate(rows) if i not in (3, 7)}
    assert len(running) == 1
    assert rows[0]["EventTemplate"] == "Running task <*> in stage <*> (TID <*>)"
    assert rows[3]["EventId"] not in running
    assert "\x1b" not in rows[7]["EventTemplate"]


def test_state_keeps_ids_across_runs(tmp_path: Path) -> None:
    log, state = tmp_path / "spark.log", tmp_path / "state.json"
    _write_log(log)
    args = ["logs", "parse", "--input", str(log), "--format", FORMAT, "--state", str(state)]
    assert main([*args, "--output", str(tmp_path / "a.csv")]) == 0
    assert state.exists()
    assert main([*args, "--output", str(tmp_path / "b.csv")]) == 0
    assert _read(tmp_path / "a.csv") == _read(tmp_path / "b.csv")


def test_bad_input_exits_2(tmp_path: Path, capsys) -> None:
    out = str(tmp_path / "o.csv")
    assert main(["logs", "parse", "--input", str(tmp_path / "missing.log"), "--output", out]) == 2
    assert "cannot read" in capsys.readouterr().err
    log = tmp_path / "x.log"
    log.write_text("a\n", encoding="utf-8")
    assert main(["logs", "parse", "--input", str(log), "--format", "<Date>", "--output", out]) == 2
    assert "<Content>" in capsys.readouterr().err
