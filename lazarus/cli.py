"""`lazarus ...`: the operator's command line.

Each feature module contributes its sub-commands through ``add_parsers(subparsers)``; a command
sets ``func`` and returns the process exit code (0 ok, 1 failed, 2 bad input). Commands of the
Prefect layer arrive through the ``lazarus.commands`` entry point group, so the core never
imports it.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from importlib.metadata import entry_points

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
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lazarus", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="log what each part does")
    sub = parser.add_subparsers(dest="command", required=True)
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
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
