"""`lazarus state migrate -c CONFIG`: move the config's SQLite store to its ``state.url``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from lazarus.commands import add_config, load
from lazarus.errors import LazarusError
from lazarus.secrets import resolve


def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("state", help="the store: move it from SQLite to PostgreSQL")
    actions = p.add_subparsers(dest="action", required=True)
    m = actions.add_parser(
        "migrate", help="copy the SQLite store (state.path) into PostgreSQL (state.url)"
    )
    add_config(m)
    m.add_argument("--from", dest="source", type=Path, help="SQLite file (default: state.path)")
    m.add_argument("--to", dest="url", help="postgresql://… (default: state.url)")
    m.set_defaults(func=_migrate)


def _migrate(args: argparse.Namespace) -> int:
    from lazarus.state_migrate import migrate

    config = load(args)
    source = args.source or config.path(config.state.path)
    url = args.url or (resolve(config.state.url).reveal() if config.state.url else None)
    if not url:
        print("error: state.url is not set in the config and --to was not given", file=sys.stderr)
        return 2
    try:
        copied = migrate(source, url)
    except LazarusError as exc:
        print(f"error: {exc}; nothing was written", file=sys.stderr)
        return 1
    if not copied:
        print(f"no SQLite store at {source} yet: nothing to move; the PostgreSQL store is ready")
        return 0
    total = sum(copied.values())
    print(f"moved {total} rows in {len(copied)} tables from {source} to PostgreSQL")
    for table, rows in copied.items():
        print(f"  {table:<24} {rows}")
    return 0
