"""Masking: obvious variables become <*>, words stay, hostile input never breaks it."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lazarus.logmine import key_of, mask, sanitize
from lazarus.logmine.masking import MAX_CHARS, MAX_TOKENS


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ("Received block blk_-1608999687919862906 of size 91178", "Received block <*> of size <*>"),
        ("connection from 10.0.0.7 port 22", "connection from <*> port <*>"),
        ("addr 0x7f3a2b and 2607:f140:400:a01b:c6b3:1ff:fecd:467f", "addr <*> and <*>"),
        ("mac FF:F2:9F:16:EB:27 up", "mac <*> up"),
        ("id 123e4567-e89b-12d3-a456-426614174000 done", "id <*> done"),
        ("open /var/log/app/current.log failed", "open <*> failed"),
        ("loading ./runtime_malloc now", "loading <*> now"),
        (r"Core: C:\Windows\winsxs\cbscore.dll loaded", "Core: <*> loaded"),
        ("GET https://example.org/a?b=c ok", "GET <*> ok"),
        ("peer proxy.example.edu.hk:5070 open", "peer <*>:<*> open"),
        ("sent 18.4 KB in 5 ms", "sent <*> <*> in <*> <*>"),
        ("at Sun Jul  3 10:05:25 2005", "at <*> <*> <*> <*>:<*>:<*> <*>"),
        ("user=root uid=0 rhost=", "user=root uid=<*> rhost="),
        ("interrupt caused by dcbf.........0", "interrupt caused by dcbf.........<*>"),
    ],
)
def test_mask_replaces_obvious_variables(message: str, expected: str) -> None:
    assert " ".join(mask(message)) == expected


def test_key_leaves_out_pure_variables_so_their_length_does_not_matter() -> None:
    short = "x close, 0 bytes sent, lifetime 00:01"
    long = "x close, 1190 bytes (1.16 KB) sent, lifetime <1 sec"
    assert key_of(short) == key_of(long) == ("x", "close,", "bytes", "sent,", "lifetime")


def test_words_that_differ_keep_keys_apart() -> None:
    assert key_of("Changing view acls to: yarn") != key_of("Changing modify acls to: yarn")


def test_ansi_escapes_are_dropped() -> None:
    assert mask("\x1b[31mERROR\x1b[0m disk full") == ["ERROR", "disk", "full"]


def test_megabyte_line_is_cut() -> None:
    line = "word " * 300_000
    assert len(sanitize(line)) == MAX_CHARS
    assert len(mask(line)) <= MAX_TOKENS
    assert len(key_of(line)) <= MAX_TOKENS


def test_binary_and_replacement_characters_become_visible_placeholders() -> None:
    raw = b"\x00\x01bin\xff\xfe ary \x7f".decode("utf-8", "replace")
    tokens = mask(raw)
    assert all(ch.isprintable() for tok in tokens for ch in tok)
    assert tokens == ["??bin??", "ary", "?"]


def test_lone_surrogates_are_replaced() -> None:
    assert mask("bad \udcff byte") == ["bad", "?", "byte"]


@given(st.text(max_size=300))
def test_any_text_masks_without_error(text: str) -> None:
    tokens = mask(text)
    assert len(tokens) <= MAX_TOKENS
    assert all(tok.strip() == tok and tok for tok in tokens)
    assert len(key_of(text)) <= len(tokens)
