"""Alertmanager's routing tree: which receivers hear about an incident with these labels.

Matchers use Alertmanager's syntax (``name="value"``, ``name!="value"``, ``name=~"regex"``,
``name!~"regex"``; several may share one string, comma-separated, optionally in braces).
Regexes are anchored and a missing label reads as ``""``, as in Alertmanager, so an
operator's intuition from ``amtool config routes test`` carries over unchanged. Loading the
config parses every matcher (lazarus.config), so a typo fails ``lazarus check``, not a page.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING

from lazarus.errors import ConfigError

if TYPE_CHECKING:  # config validates matchers with parse_matchers: no import cycle at runtime
    from lazarus.config import Route

_MATCHER = re.compile(
    r"""\s*(?P<name>[A-Za-z_][A-Za-z0-9_]*)\s*(?P<op>=~|!~|!=|=)\s*"""
    r"""(?P<value>"(?:[^"\\]|\\.)*"|[^\s",{}=!~]*)\s*"""
)
_ESCAPE = re.compile(r"\\(.)")


@dataclass(frozen=True)
class Matcher:
    """One ``name op value`` test on a label set."""

    name: str
    op: str
    value: str
    pattern: re.Pattern[str] | None = field(default=None, compare=False, repr=False)

    def matches(self, labels: Mapping[str, str]) -> bool:
        value = labels.get(self.name, "")
        if self.pattern is None:
            return (value == self.value) == (self.op == "=")
        return (self.pattern.fullmatch(value) is not None) == (self.op == "=~")

    def __str__(self) -> str:
        escaped = self.value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
        return f'{self.name}{self.op}"{escaped}"'


@lru_cache(maxsize=1024)
def parse_matchers(text: str) -> tuple[Matcher, ...]:
    """``'severity="critical", team=~"db|ops"'`` -> matchers; ConfigError says what is wrong."""
    body = text.strip()
    if body.startswith("{") and body.endswith("}"):
        body = body[1:-1]
    matchers: list[Matcher] = []
    pos = 0
    while pos < len(body) and body[pos:].strip():
        found = _MATCHER.match(body, pos)
        if not found:
            raise ConfigError(
                f"cannot read matcher {text!r} at {body[pos:].strip()!r}: expected "
                'name, operator (=, !=, =~, !~) and value, e.g. severity="critical"'
            )
        matchers.append(_matcher(text, found["name"], found["op"], _unquote(found["value"])))
        pos = found.end()
        if pos < len(body):
            if body[pos] != ",":
                raise ConfigError(f"cannot read matcher {text!r}: expected ',' at {body[pos:]!r}")
            pos += 1
    if not matchers:
        raise ConfigError(f"matcher {text!r} is empty")
    return tuple(matchers)


def matches_all(texts: Sequence[str], labels: Mapping[str, str]) -> bool:
    """Whether ``labels`` satisfy every matcher of every string (no strings: always)."""
    return all(m.matches(labels) for text in texts for m in parse_matchers(text))


def _matcher(text: str, name: str, op: str, value: str) -> Matcher:
    if op not in ("=~", "!~"):
        return Matcher(name, op, value)
    try:
        return Matcher(name, op, value, re.compile(value))
    except re.error as exc:
        raise ConfigError(f"matcher {text!r}: invalid regex {value!r} ({exc})") from None


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] == '"':
        return _ESCAPE.sub(lambda m: "\n" if m[1] == "n" else m[1], value[1:-1])
    return value


@dataclass(frozen=True)
class Grouping:
    """One matching route node with what it inherited: where its group messages go, and when."""

    receiver: str
    path: str
    group_by: tuple[str, ...] = ()
    group_wait: float = 30.0
    group_interval: float = 300.0
    repeat_interval: float = 4 * 3600.0

    def group_labels(self, labels: Mapping[str, str]) -> dict[str, str]:
        """The labels that name this alert's group (all of them for ``group_by: ['...']``)."""
        if "..." in self.group_by:
            return dict(sorted(labels.items()))
        return {name: labels.get(name, "") for name in self.group_by}


def routes_for(route: Route, labels: Mapping[str, str]) -> list[Grouping]:
    """The matching nodes for ``labels`` in tree order (Alertmanager's dispatch).

    Depth-first; the first matching child wins unless it says ``continue: true``; a child
    inherits its parent's receiver, group_by and timings unless it sets its own; when no
    child matches, the node itself answers.
    """
    return _walk(route, labels, _inherit(Grouping("", "0"), route, "0"), root=True)


def receivers_for(route: Route, labels: Mapping[str, str]) -> list[str]:
    """Receivers for ``labels``, in tree order and each once (``amtool config routes test``)."""
    return list(dict.fromkeys(g.receiver for g in routes_for(route, labels) if g.receiver))


def _inherit(parent: Grouping, route: Route, path: str) -> Grouping:
    return Grouping(
        route.receiver or parent.receiver,
        path,
        parent.group_by if route.group_by is None else tuple(route.group_by),
        _or(route.group_wait, parent.group_wait),
        _or(route.group_interval, parent.group_interval),
        _or(route.repeat_interval, parent.repeat_interval),
    )


def _or(value: float | None, inherited: float) -> float:
    return inherited if value is None else value


def _walk(
    route: Route, labels: Mapping[str, str], here: Grouping, *, root: bool = False
) -> list[Grouping]:
    """The matching nodes below ``route`` ([] when ``route`` itself does not match)."""
    if not root and not matches_all(route.matchers, labels):
        return []
    found: list[Grouping] = []
    for i, child in enumerate(route.routes):
        below = _walk(child, labels, _inherit(here, child, f"{here.path}.{i}"))
        found += below
        if below and not child.continue_:
            break
    return found or [here]
