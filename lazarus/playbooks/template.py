"""``{{ incident.host }}``-style substitution by dotted names: no eval, no Jinja.

A value that is exactly one placeholder keeps its type; otherwise the text is substituted.
Substituted values are data: commands are argv lists, quoted by the transport, never a shell.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from lazarus.errors import ConfigError

_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z0-9_-]+)*)\s*\}\}")


def names_in(value: Any) -> list[str]:
    """Every dotted name referenced inside ``value`` (strings, lists, mappings)."""
    if isinstance(value, str):
        return _PLACEHOLDER.findall(value)
    if isinstance(value, Mapping):
        return [n for v in value.values() for n in names_in(v)]
    if isinstance(value, list | tuple):
        return [n for v in value for n in names_in(v)]
    return []


class Pending(dict):
    """A scope only known while the playbook runs (``steps``: what earlier steps reported); a
    dry-run plan shows its names as ``<steps.clean.freed>``."""


def resolve(name: str, scope: Mapping[str, Any], step: str) -> Any:
    """Look ``a.b.c`` up in nested mappings; an unknown name is a ConfigError naming the step."""
    node: Any = scope
    for part in name.split("."):
        if isinstance(node, Pending):
            return f"<{name}>"
        if not isinstance(node, Mapping) or part not in node:
            raise ConfigError(f"unknown name {name!r} in a template", field=f"steps.{step}")
        node = node[part]
    return node


def render(value: Any, scope: Mapping[str, Any], step: str) -> Any:
    """``value`` with every placeholder replaced from ``scope``."""
    if isinstance(value, str):
        whole = _PLACEHOLDER.fullmatch(value.strip())
        if whole:
            return resolve(whole.group(1), scope, step)
        return _PLACEHOLDER.sub(lambda m: str(resolve(m.group(1), scope, step)), value)
    if isinstance(value, Mapping):
        return {k: render(v, scope, step) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [render(v, scope, step) for v in value]
    return value
