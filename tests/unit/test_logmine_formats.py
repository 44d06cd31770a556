"""Header formats and reading raw log files: line ends, bad bytes, endless lines."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from lazarus.errors import ConfigError
from lazarus.logmine import LogFormat, iter_lines
from lazarus.logmine.formats import MAX_LINE_BYTES


def test_format_splits_header_and_content() -> None:
    fmt = LogFormat(
        r"<Month>  <Date> <Time> <User> <Component>\[<PID>\]( \(<Address>\))?: <Content>"
    )
    fields = fmt.split("Jul  1 09:00:55 host kernel[0]: ARPT: 620.1: wl0: up")
    assert fields is not None
    assert (fields["Component"], fields["PID"], fields["Content"]) == (
        "kernel",
        "0",
        "ARPT: 620.1: wl0: up",
    )


def test_a_line_that_does_not_fit_is_all_content() -> None:
    fmt = LogFormat("<Date> <Time> <Level> <Component>: <Content>")
    assert fmt.split("garbage") is None
    assert fmt.content("garbage") == "garbage"


@pytest.mark.parametrize("spec", ["<Date> <Time>", "<Content> <Content>", "(<Date> <Content>"])
def test_bad_formats_are_config_errors(spec: str) -> None:
    with pytest.raises(ConfigError) as info:
        LogFormat(spec)
    assert info.value.field == "format"


def test_crlf_lf_and_missing_last_end(tmp_path: Path) -> None:
    path = tmp_path / "a.log"
    path.write_bytes(b"one\r\ntwo\nthree\r\n\r\nfour")
    assert list(iter_lines(path)) == ["one", "two", "three", "", "four"]


def test_invalid_utf8_is_replaced_not_raised() -> None:
    assert list(iter_lines(io.BytesIO(b"ok \xff\xfe end\n\x00\x01\n"))) == [
        "ok \ufffd\ufffd end",
        "\x00\x01",
    ]


def test_a_megabyte_line_is_cut_and_the_next_line_survives() -> None:
    data = b"x" * (3 * 1024 * 1024) + b"\nnext\n"
    lines = list(iter_lines(io.BytesIO(data)))
    assert len(lines) == 2
    assert len(lines[0]) == MAX_LINE_BYTES
    assert lines[1] == "next"


def test_an_endless_last_line_is_cut() -> None:
    lines = list(iter_lines(io.BytesIO(b"a\n" + b"y" * (2 * 1024 * 1024 + 5))))
    assert lines[0] == "a" and len(lines) == 2 and len(lines[1]) == MAX_LINE_BYTES
