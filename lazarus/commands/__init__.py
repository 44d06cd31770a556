"""The `lazarus` subcommands of the core, one module each (see lazarus.cli)."""

from __future__ import annotations

import sys

from lazarus.errors import ConfigError


def print_errors(exc: ConfigError) -> int:
    """Every error of a config, playbook or signatures file on stderr; the exit code 2."""
    for error in getattr(exc, "errors", [exc]):
        print(f"error: {error}", file=sys.stderr)
    return 2
