"""The `lazarus` subcommands of the core, one module each (see lazarus.cli), and what every
command shares: one way to name the config (``-c/--config``, then ``$LAZARUS_CONFIG``, then
``./lazarus.yaml``), ``--json`` output, and the exit codes (0 ok, 1 failed, 2 usage or config).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lazarus.errors import ConfigError, LazarusError

if TYPE_CHECKING:
    from lazarus.config import Config

CONFIG_ENV = "LAZARUS_CONFIG"
DEFAULT_CONFIG = "lazarus.yaml"


class UsageError(LazarusError):
    """The command line asks for something that cannot be: exit code 2, no traceback."""


def add_config(parser: argparse.ArgumentParser) -> None:
    """``-c/--config FILE`` on ``parser``, the same for every command that reads a config."""
    parser.add_argument(
        "-c",
        "--config",
        default=None,
        metavar="FILE",
        help=f"the config (default: ${CONFIG_ENV}, then ./{DEFAULT_CONFIG})",
    )


def config_path(args: argparse.Namespace) -> Path:
    """The config a command reads: ``-c``, else ``$LAZARUS_CONFIG``, else ``./lazarus.yaml``;
    absolute, so flows started elsewhere find it. Raises UsageError when it does not exist."""
    given = args.config or os.environ.get(CONFIG_ENV) or DEFAULT_CONFIG
    path = Path(given).expanduser()
    if not path.is_file():
        how = "-c" if args.config else f"${CONFIG_ENV}" if os.environ.get(CONFIG_ENV) else "default"
        raise UsageError(f"config {given} ({how}) not found: give -c FILE or set {CONFIG_ENV}")
    return path.resolve()


def load(args: argparse.Namespace, *, check_secrets: bool = False) -> Config:
    """The validated config of ``args`` (ConfigError names the file, line and field)."""
    from lazarus.config import load_config

    return load_config(config_path(args), check_secrets=check_secrets)


def add_json(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")


def print_json(value: Any) -> None:
    """One JSON document on stdout (objects that are not JSON print as their text)."""
    print(json.dumps(value, indent=2, default=str))


def print_errors(exc: ConfigError) -> int:
    """Every error of a config, playbook or signatures file on stderr; the exit code 2."""
    for error in getattr(exc, "errors", [exc]):
        print(f"error: {error}", file=sys.stderr)
    return 2
