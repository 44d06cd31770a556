"""Turn one raw log message into masked tokens and the key the miner groups on.

Masking replaces what is obviously a variable (numbers, ids, hex, IPs, MACs, paths, URLs, UUIDs,
timestamps, quantities with units) by ``<*>`` before the tree sees the line, so the tree only
has to decide about variables that look like words. One generic rule set: nothing here is tuned
to a particular log source.

Speed comes from working per whitespace token with a cache: a log stream repeats its words, so
almost every token is one dict look-up; the regular expressions run once per distinct token.
"""

from __future__ import annotations

import re
from collections.abc import Callable

WILDCARD = "<*>"

# Longer messages are cut: a megabyte line must cost no more than a normal one.
MAX_CHARS = 4096
MAX_TOKENS = 256
_CACHE_SIZE = 200_000

_ANSI = re.compile(r"\x1b(?:\[[0-9;?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)?|[@-Z\\-_])?")
_CONTROL = re.compile(r"[\x00-\x1f\x7f\ud800-\udfff\ufffd]")

# Words that are variables on their own: parts of dates and units of a preceding number.
_MONTHS = "Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec"
_DAYS_AND_ZONES = "Mon Tue Wed Thu Fri Sat Sun UTC GMT CET CEST PST PDT EST EDT MST MDT"
_UNITS = "B KB MB GB TB PB KiB MiB GiB TiB ms us ns sec secs min mins"
_VARIABLE_WORDS = frozenset(f"{_MONTHS} {_DAYS_AND_ZONES} {_UNITS}".split(" "))
_PUNCT = "()[]{}<>,;:.'\"|"
# Characters that end a word; a single dot does not (versions, host and class names), a run does.
_DELIMS = r"\s=:,;()\[\]{}<>\"'|"
_WORD = rf"[^{_DELIMS}.]+(?:\.[^{_DELIMS}.]+)*"

_MASK = re.compile(
    "|".join(
        (
            # UUIDs, MAC addresses, IPv6 addresses
            r"\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b",
            r"\b(?:[0-9A-Fa-f]{2}[:-]){3,}[0-9A-Fa-f]{2}\b",
            r"\b(?:[0-9A-Fa-f]{0,4}:){3,7}[0-9A-Fa-f]{1,4}\b",
            # hashes and ids written in hex letters only
            r"\b(?:0[xX])?[0-9a-fA-F]{16,}\b",
            # URLs and the host of a host:port endpoint
            r"\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s,;\"'()\[\]{}<>]*",
            r"\b[\w-]+(?:\.[\w-]+)+(?=:\d+\b)",
            # absolute and relative paths
            r"(?<![\w/.~])(?:\.{1,2}|~)?/[\w.~+\-/]*\w",
            r"\b[A-Za-z]:\\[^\s\"'<>|]*",
            # a word: masked when it holds a digit (numbers, ids, IPs, versions, host-1, blk_-42)
            rf"(?P<word>{_WORD})",
        )
    )
)
_DIGIT = re.compile(r"\d")
# Masking never keeps a digit, so tokens that differ only in their digits mask alike.
_ZERO_DIGITS = str.maketrans("123456789", "000000000")


def _replace(match: re.Match) -> str:
    text = match.group()
    if match.lastgroup == "word" and _DIGIT.search(text) is None:
        return text
    return WILDCARD


def sanitize(text: str) -> str:
    """Make hostile input harmless: cut to size and drop ANSI escape sequences."""
    if len(text) > MAX_CHARS:
        text = text[:MAX_CHARS]
    if "\x1b" in text:
        text = _ANSI.sub("", text)
    return text


def mask_token(token: str) -> str:
    """One token with its obvious variables replaced by ``<*>``."""
    if _CONTROL.search(token):
        token = _CONTROL.sub("?", token)
    if token.strip(_PUNCT) in _VARIABLE_WORDS:
        return WILDCARD
    return _MASK.sub(_replace, token)


def mask(text: str) -> list[str]:
    """Masked tokens of a message: what a template prints."""
    tokens = sanitize(text).split()
    return list(map(_MASKED.__getitem__, tokens[:MAX_TOKENS]))


def is_constant(masked: str) -> bool:
    """Whether a masked token carries template identity: a letter or digit outside ``<*>``.

    Pure-variable tokens (``<*>``, ``(<*>)``, ``<*>,``) and bare punctuation are left out of
    the grouping key, so a variable that spans a varying number of tokens (``0 bytes`` vs
    ``18 bytes (18.4 KB)``, ``Jul  3 10:05:25`` vs ``00:01``) does not split a template.
    """
    return any(ch.isalnum() for ch in masked.replace(WILDCARD, ""))


class _TokenCache(dict):
    """raw token -> ``derive(token)``, filled on first use and bounded in size."""

    def __init__(self, derive: Callable[[str], str]):
        super().__init__()
        self.derive = derive

    def __missing__(self, token: str) -> str:
        shape = token.translate(_ZERO_DIGITS)
        # Tokens with digits are often unique, but their shapes repeat.
        value = self[shape] if shape != token else self.derive(token)
        if len(self) >= _CACHE_SIZE:
            self.clear()
        self[token] = value
        return value


def _key_token(token: str) -> str:
    masked = _MASKED[token]
    return masked if is_constant(masked) else ""


# raw token -> masked token; raw token -> key token ('' for a pure variable)
_MASKED = _TokenCache(mask_token)
_KEYS = _TokenCache(_key_token)


def key_of(text: str) -> tuple[str, ...]:
    """The grouping key of a message: its constant tokens after masking (the hot path)."""
    if len(text) > MAX_CHARS or "\x1b" in text:
        text = sanitize(text)
    tokens = text.split()
    if len(tokens) > MAX_TOKENS:
        del tokens[MAX_TOKENS:]
    return tuple(filter(None, map(_KEYS.__getitem__, tokens)))


def clear_caches() -> None:
    """Forget every cached token (benchmarks measure a cold start with this)."""
    _MASKED.clear()
    _KEYS.clear()
