"""Secret references and a value type that never prints itself.

Config holds references, not values: ``env:NAME`` reads an environment variable,
``file:PATH`` reads a file, ``secret:NAME`` asks the resolver registered for that scheme
(the Prefect layer registers one for Secret blocks; the core never imports Prefect).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from lazarus.errors import SecretError

SCHEMES = ("env:", "file:", "secret:")

_resolvers: dict[str, Callable[[str], str]] = {}


class Secret:
    """A resolved secret. ``repr``/``str`` are redacted; call ``reveal()`` at the point of use."""

    __slots__ = ("_value", "ref")

    def __init__(self, value: str, ref: str = "inline"):
        self._value = value
        self.ref = ref

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return f"Secret({self.ref!r})"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


def is_reference(value: str) -> bool:
    """True when ``value`` is a secret reference rather than a literal."""
    return value.startswith(SCHEMES)


def register_resolver(scheme: str, resolver: Callable[[str], str]) -> None:
    """Plug in a resolver for ``scheme:NAME`` references (e.g. ``secret`` -> Prefect blocks)."""
    _resolvers[scheme] = resolver


def resolve(ref: str) -> Secret:
    """Turn a reference into a Secret; a literal (no scheme) is wrapped as it is."""
    scheme, _, name = ref.partition(":")
    if not is_reference(ref):
        return Secret(ref)
    if not name:
        raise SecretError(ref, "the reference names nothing after the colon")
    if scheme == "env":
        if name not in os.environ:
            raise SecretError(ref, f"environment variable {name} is not set")
        return Secret(os.environ[name], ref)
    if scheme == "file":
        try:
            return Secret(Path(name).expanduser().read_text().strip(), ref)
        except OSError as exc:
            raise SecretError(ref, f"cannot read the file ({exc.strerror})") from None
    resolver = _resolvers.get(scheme)
    if resolver is None:
        raise SecretError(ref, f"no resolver for '{scheme}:' references is registered here")
    try:
        return Secret(resolver(name), ref)
    except SecretError:
        raise
    except Exception as exc:  # a resolver's own failure: keep the type, never the value
        raise SecretError(ref, f"{type(exc).__name__} while resolving") from None
