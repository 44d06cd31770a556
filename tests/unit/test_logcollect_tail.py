"""Reading a file incrementally: output parsing, line splitting, tail_file() on local files."""

from __future__ import annotations

import base64
import os
import subprocess
from pathlib import Path

import pytest

from lazarus.logcollect import (
    Chunk,
    Cursor,
    LocalReader,
    LogReadError,
    parse_output,
    split_lines,
    tail_file,
)
from lazarus.logcollect.tail import REMOTE_SCRIPT


def run(path: Path, cursor: Cursor | None, budget: int = 1 << 16, max_line: int = 100, **kw):
    return tail_file(LocalReader(), str(path), cursor, budget=budget, max_line=max_line, **kw)


# --- the remote script's answer -------------------------------------------------------------


def test_parse_output_reads_inode_size_and_base64_bytes() -> None:
    data = b"a\xff\x00b\n"
    chunk = parse_output(f"123 456\n{base64.b64encode(data).decode()}")
    assert chunk == Chunk(123, 456, data)
    assert parse_output("7 0\n") == Chunk(7, 0, b"")


@pytest.mark.parametrize("stdout", ["", "12\n", "a b\nAAAA", "1 2 3\n", "1 2", "1 2\n!!notb64"])
def test_parse_output_refuses_garbled_answers(stdout: str) -> None:
    with pytest.raises(LogReadError):
        parse_output(stdout)


def test_remote_script_run_by_sh_answers_what_parse_output_reads(tmp_path: Path) -> None:
    log = tmp_path / "it's a log; $(touch x).log"
    log.write_bytes(b"one\ntwo\nthree\n")

    def script(*args: str) -> subprocess.CompletedProcess:
        argv = ["sh", "-c", REMOTE_SCRIPT, "lazarus-tail", *args]
        return subprocess.run(argv, capture_output=True, text=True, timeout=10, cwd=tmp_path)

    chunk = parse_output(script(str(log), "4", "3").stdout)
    assert chunk == Chunk(os.stat(log).st_ino, 14, b"two")
    assert parse_output(script(str(log), "99", "10").stdout).data == b""  # past the end
    assert parse_output(script(str(log), "0", "0").stdout).size == 14  # identity only
    missing = script(str(tmp_path / "nope.log"), "0", "10")
    assert missing.returncode != 0 and "nope.log" in missing.stderr
    folder = script(str(tmp_path), "0", "10")
    assert folder.returncode != 0 and "not a regular file" in folder.stderr
    assert not (tmp_path / "x").exists()


# --- splitting ----------------------------------------------------------------------------


def test_split_keeps_a_partial_last_line_unconsumed() -> None:
    split = split_lines(b"one\r\ntwo\nthr", max_line=100)
    assert split.lines == ["one", "two"] and split.consumed == 9 and not split.skipping


def test_split_cuts_a_long_complete_line_and_counts_it() -> None:
    split = split_lines(b"x" * 50 + b"\nok\n", max_line=10)
    assert split.lines == ["x" * 10, "ok"] and split.cut == 1 and split.consumed == 54


def test_split_cuts_a_long_partial_line_then_skips_to_its_end() -> None:
    first = split_lines(b"ok\n" + b"y" * 30, max_line=10)
    assert first.lines == ["ok", "y" * 10] and first.consumed == 33 and first.skipping
    middle = split_lines(b"y" * 30, max_line=10, skipping=True)
    assert middle.lines == [] and middle.consumed == 30 and middle.skipping
    last = split_lines(b"yyy\nnext\n", max_line=10, skipping=True)
    assert last.lines == ["next"] and last.consumed == 9 and not last.skipping


def test_split_decodes_garbage_with_replacement_and_strips_ansi() -> None:
    split = split_lines(b"\xff\xfe\x00bin\n\x1b[31mERROR\x1b[0m red\n\n   \n", max_line=100)
    assert split.lines == ["\ufffd\ufffd\x00bin", "ERROR red"]


# --- tail on local files -------------------------------------------------------------------


def test_first_sighting_starts_at_the_end_then_reads_only_new_lines(tmp_path: Path) -> None:
    log = tmp_path / "a.log"
    log.write_text("old 1\nold 2\n")
    first = run(log, None)
    assert first.lines == [] and first.cursor.offset == 12
    with log.open("a") as f:
        f.write("new 1\nnew 2\npart")
    second = run(log, first.cursor)
    assert second.lines == ["new 1", "new 2"] and second.cursor.offset == 24
    with log.open("a") as f:
        f.write("ial\n")
    assert run(log, second.cursor).lines == ["partial"]


def test_first_sighting_from_the_beginning(tmp_path: Path) -> None:
    log = tmp_path / "a.log"
    log.write_text("old 1\nold 2\n")
    assert run(log, None, start="beginning").lines == ["old 1", "old 2"]


def test_rotation_and_truncation_restart_at_zero(tmp_path: Path) -> None:
    log = tmp_path / "a.log"
    log.write_text("a\n" * 10)
    cursor = run(log, None).cursor
    log.rename(tmp_path / "a.log.1")
    log.write_text("fresh\n")
    rotated = run(log, cursor)
    assert rotated.rotated and rotated.lines == ["fresh"] and rotated.cursor.offset == 6
    log.write_text("")  # truncate in place, same inode
    with log.open("a") as f:
        f.write("b\n")
    truncated = run(log, rotated.cursor)
    assert truncated.truncated and not truncated.rotated and truncated.lines == ["b"]


def test_rotation_finishes_the_old_file_at_dot_1_first(tmp_path: Path) -> None:
    log = tmp_path / "a.log"
    log.write_text("seen\n")
    cursor = run(log, None).cursor
    with log.open("a") as f:
        f.write("late 1\nlate 2 no newline")
    log.rename(tmp_path / "a.log.1")
    log.write_text("new\n")
    result = run(log, cursor)
    assert result.rotated and result.lines == ["late 1", "late 2 no newline", "new"]


def test_budget_caps_a_cycle_and_the_next_continues(tmp_path: Path) -> None:
    log = tmp_path / "a.log"
    log.write_text("")
    cursor = run(log, None).cursor
    log.write_text("".join(f"line {i:04}\n" for i in range(100)))  # 10 bytes each
    seen: list[str] = []
    for _ in range(10):
        result = run(log, cursor, budget=256, max_line=64)
        assert result.read <= 256
        seen += result.lines
        cursor = result.cursor
        if not result.behind:
            break
    assert seen == [f"line {i:04}" for i in range(100)]


def test_a_huge_line_is_cut_once_and_the_next_line_is_read(tmp_path: Path) -> None:
    log = tmp_path / "a.log"
    log.write_text("")
    cursor = run(log, None).cursor
    log.write_bytes(b"before\n" + b"z" * (2 << 20) + b"\nafter\n")
    lines, cut = [], 0
    for _ in range(10):
        result = run(log, cursor, budget=1 << 20, max_line=4096)
        lines, cut, cursor = lines + result.lines, cut + result.cut, result.cursor
        if not result.behind:
            break
    assert lines == ["before", "z" * 4096, "after"] and cut == 1
    assert cursor.offset == log.stat().st_size and not cursor.skipping


def test_a_missing_file_raises_log_read_error(tmp_path: Path) -> None:
    with pytest.raises(LogReadError, match="cannot open"):
        run(tmp_path / "none.log", None)


class SmallReads(LocalReader):
    """A reader whose transport carries little per call, as a small SSH output cap would."""

    max_read = 100


def test_one_cycle_spends_its_budget_over_many_small_reads(tmp_path: Path) -> None:
    log = tmp_path / "a.log"
    log.write_text("")
    cursor = tail_file(SmallReads(), str(log), None, budget=1000, max_line=4096).cursor
    log.write_text("".join(f"l{i:03}\n" for i in range(150)))  # 5 bytes each, 750 in all
    result = tail_file(SmallReads(), str(log), cursor, budget=1000, max_line=4096)
    assert result.lines == [f"l{i:03}" for i in range(150)] and not result.behind
    assert result.cursor.offset == 750
