"""Command templates (``control: command``, ``out_of_band``): split into argv, then filled.

A template is split into tokens first and only then filled, so a value can never become two
arguments. A placeholder that is a whole token becomes that argument as it is; one inside a
longer token (``sh -c 'systemctl restart {unit}'``) is shell-quoted, since a shell will read
that token. A filled argument may not start with ``-``: a value is never an option.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterable, Mapping

from lazarus.errors import CommandRejected

PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
CONTROL = ("service", "unit", "host", "address")  # control templates
OUT_OF_BAND = ("host", "address")  # the out-of-band reboot's argv
URL = ("host", "address")  # a service's probe URL


def check_template(template: str | Iterable[str], known: Iterable[str]) -> None:
    """Raise ValueError when the template does not split or names a placeholder not in
    ``known``, so ``lazarus check`` finds what would otherwise fail in every cycle."""
    tokens = _tokens(template)
    allowed = set(known)
    for token in tokens:
        unknown = sorted(set(PLACEHOLDER.findall(token)) - allowed)
        if unknown:
            names = ", ".join(f"{{{n}}}" for n in sorted(allowed))
            raise ValueError(f"unknown placeholder {{{unknown[0]}}} (known: {names})")


def fill_argv(template: str | Iterable[str], values: Mapping[str, str], host: str) -> list[str]:
    """The argv of ``template`` with ``values`` filled in (see the module doc)."""
    argv = []
    for token in _tokens(template):
        whole = PLACEHOLDER.fullmatch(token)
        if whole:
            value = values[whole.group(1)]
            if value.startswith("-") or not value:
                raise CommandRejected(host, f"{{{whole.group(1)}}} = {value!r} is not an argument")
            argv.append(value)
        else:
            argv.append(PLACEHOLDER.sub(lambda m: shlex.quote(values[m.group(1)]), token))
    return argv


def _tokens(template: str | Iterable[str]) -> list[str]:
    if isinstance(template, str):
        try:
            return shlex.split(template)
        except ValueError as exc:
            raise ValueError(f"{template!r} does not split into arguments: {exc}") from None
    return list(template)
