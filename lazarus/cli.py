"""`lazarus ...`: the operator's command line.

Each feature module contributes its sub-commands through ``add_parsers(subparsers)``; a command
sets ``func`` and returns the process exit code: 0 ok, 1 failed, 2 usage or config error
(lazarus.commands has the shared ``-c/--config`` and ``--json`` handling). An error a person can
fix prints one line, never a traceback; ``-v`` shows the traceback too. Commands of the Prefect
layer arrive through the ``lazarus.commands`` entry point group, so the core never imports it.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
import traceback
from importlib.metadata import PackageNotFoundError, entry_points, version

from lazarus.commands import UsageError, print_errors
from lazarus.errors import ConfigError, LazarusError

# Modules that add sub-commands, in the order `lazarus --help` lists them.
_FEATURES = (
    "lazarus.commands.check",
    "lazarus.commands.incidents",
    "lazarus.commands.sandbox",
    "lazarus.commands.detect",
    "lazarus.commands.backtest",
    "lazarus.commands.logs",
    "lazarus.commands.silence",
    "lazarus.commands.notify",
    "lazarus.commands.playbooks",
    "lazarus.commands.diagnose",
    "lazarus.commands.snapshot",
    "lazarus.commands.state",
)


def _version() -> str:
    try:
        return version("lazarus")
    except PackageNotFoundError:
        return "unknown"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lazarus", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="log what each part does")
    parser.add_argument("--version", action="version", version=f"lazarus {_version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in _FEATURES:
        importlib.import_module(name).add_parsers(sub)
    for plugin in entry_points(group="lazarus.commands"):
        plugin.load()(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        return int(args.func(args) or 0)
    except (ConfigError, UsageError, LazarusError, OSError) as exc:
        if args.verbose:
            traceback.print_exc()
        if isinstance(exc, ConfigError):
            return print_errors(exc)
        print(f"error: {_say(exc)}", file=sys.stderr)
        return 2 if isinstance(exc, (UsageError, OSError)) else 1
    except KeyboardInterrupt:
        return 130


def _say(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.filename:
        return f"{exc.filename}: {exc.strerror or exc}"
    return str(exc)


if __name__ == "__main__":
    sys.exit(main())
