"""`lazarus diagnose incident|check`: rank an incident's causes by hand; validate signatures."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from lazarus.commands import print_errors
from lazarus.config import load_config
from lazarus.diagnose.diagnosis import diagnose
from lazarus.diagnose.signatures import DEFAULT_PATH, load_signatures
from lazarus.errors import ConfigError
from lazarus.store import Store


def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("diagnose", help="probable causes of an incident; check signatures")
    cmds = p.add_subparsers(dest="diagnose_cmd", required=True)
    i = cmds.add_parser("incident", help="rank the probable causes of incident ID")
    i.add_argument("config")
    i.add_argument("id", type=int)
    i.add_argument(
        "--log",
        action="append",
        default=[],
        metavar="FILE",
        help="log lines of the incident's target to read as evidence (repeatable)",
    )
    i.add_argument("--signatures", default=str(DEFAULT_PATH), metavar="FILE")
    i.add_argument("--markdown", action="store_true", help="the full report, not one paragraph")
    i.set_defaults(func=show)
    c = cmds.add_parser("check", help="validate a signatures file; exit 2 on any error")
    c.add_argument("file", nargs="?", default=str(DEFAULT_PATH))
    c.set_defaults(func=check)


def check(args: argparse.Namespace) -> int:
    try:
        signatures = load_signatures(args.file)
    except ConfigError as exc:
        return print_errors(exc)
    print(f"{args.file}: ok ({len(signatures)} signatures)")
    return 0


def show(args: argparse.Namespace) -> int:
    try:
        config = load_config(args.config)
        signatures = load_signatures(args.signatures)
    except ConfigError as exc:
        return print_errors(exc)
    store = Store(config.path(config.state.path))
    try:
        try:
            incident = store.get(args.id)
        except KeyError:
            print(f"error: no incident {args.id} in {config.state.path}", file=sys.stderr)
            return 2
        lines = [
            (incident.host, incident.service, line)
            for path in args.log
            for line in Path(path).read_text(errors="replace").splitlines()
        ]
        diagnosis = diagnose(store, config, incident, lines=lines, signatures=signatures)
    finally:
        store.close()
    print(diagnosis.markdown() if args.markdown else diagnosis.text)
    return 0
