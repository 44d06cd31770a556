"""Comparing keys and tokens: when two keys are one template, and how it widens.

Pure functions over token lists; :mod:`lazarus.logmine.miner` decides when to call them.
A *generalised* token keeps the text around its variable (``rhost=<*>``); ``<*>`` alone is a
token that is entirely variable.
"""

from __future__ import annotations

import re
from functools import lru_cache
from itertools import combinations

from lazarus.logmine.masking import WILDCARD, is_constant

# A key may lack up to this many of a template's pure-variable positions (of the first few).
MAX_GAP = 2
MAX_GAP_CHOICES = 6
_SPLIT = re.compile(r"(<\*>|[=:,;()\[\]{}<>\"'|/@#$])")

Key = tuple[str, ...] | list[str]


def join(template: list[str], key: Key) -> list[str] | None:
    """The generalised key covering both, or None if they are different templates.

    Tokens may differ only inside a variable: the differing part of one side is ``<*>`` and
    the text around it is the same (``rhost=<*>`` vs ``rhost=zummit``, ``wpad:<*>``).
    """
    out: list[str] = []
    same = fitted = 0
    for t, k in zip(template, key, strict=True):
        if t == k:
            same += 1
            out.append(t)
        elif WILDCARD in t and fits(t, k):
            fitted += 1
            out.append(t)
        elif WILDCARD in t or WILDCARD in k:
            g = generalised(t, k)
            if g is None:
                return None
            out.append(g)
        else:
            return None
    # Half of the positions not yet known to be variable must agree.
    return out if same and same * 2 >= len(template) - fitted else None


def covers(template: list[str], key: Key) -> bool:
    """Whether ``template`` matches ``key``, perhaps after dropping pure-variable positions.

    A message whose variable masking removed entirely (``ms`` is a unit, ``-`` punctuation)
    has a key without that position; it still belongs to the template.
    """
    gap = len(template) - len(key)
    if gap == 0:
        return all(
            t == k or (WILDCARD in t and fits(t, k)) for t, k in zip(template, key, strict=True)
        )
    if not 0 < gap <= MAX_GAP:
        return False
    variables = [i for i, t in enumerate(template) if not is_constant(t)][:MAX_GAP_CHOICES]
    return any(
        covers([t for i, t in enumerate(template) if i not in dropped], key)
        for dropped in combinations(variables, gap)
    )


def differing(a: list[str], b: list[str]) -> tuple[int, ...]:
    """The positions where ``a`` and ``b`` differ; empty when none or more than three."""
    out: list[int] = []
    for i, (x, y) in enumerate(zip(a, b, strict=True)):
        if x != y:
            if len(out) == 3:
                return ()
            out.append(i)
    return tuple(out)


def fits(pattern: str, token: str) -> bool:
    """Whether ``token`` matches a generalised token such as ``rhost=<*>``."""
    return _pattern(pattern).fullmatch(token) is not None


@lru_cache(maxsize=4096)
def _pattern(pattern: str) -> re.Pattern:
    return re.compile(".*".join(map(re.escape, pattern.split(WILDCARD))), re.DOTALL)


def generalised(a: str, b: str, *, force: bool = False) -> str | None:
    """``a`` and ``b`` with their differing middle replaced by ``<*>``, cut at delimiters.

    None when neither middle is a variable already, unless ``force`` (a plain-word position
    proved variable by its siblings).
    """
    pa, pb = _SPLIT.split(a), _SPLIT.split(b)
    shortest = min(len(pa), len(pb))
    i = 0
    while i < shortest and pa[i] == pb[i]:
        i += 1
    j = 0
    while j < shortest - i and pa[-1 - j] == pb[-1 - j]:
        j += 1
    middles = ("".join(pa[i : len(pa) - j]), "".join(pb[i : len(pb) - j]))
    if not force and not any(m in ("", WILDCARD) for m in middles):
        return None
    return "".join([*pa[:i], WILDCARD, *pa[len(pa) - j :]])
