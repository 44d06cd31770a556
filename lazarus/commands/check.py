"""`lazarus check CONFIG`: validate a config and resolve its secret references."""

from __future__ import annotations

import argparse
import sys

from lazarus.commands import print_errors
from lazarus.config import load_config
from lazarus.errors import ConfigError


def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("check", help="validate a config file; exit 2 on any error")
    p.add_argument("config", help="path of the YAML config")
    p.add_argument("--no-secrets", action="store_true", help="do not resolve secret references")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        config = load_config(args.config, check_secrets=not args.no_secrets)
    except ConfigError as error:  # a ConfigErrorGroup holds every error of the file
        return print_errors(error)
    folder = config.path(config.playbooks.dir)
    from lazarus.playbooks import load_dir  # only `check` pays for the action registry

    try:
        books = load_dir(folder)
    except ConfigError as error:
        return print_errors(error)
    from lazarus.diagnose.diagnosis import configured_model

    try:
        configured_model(config)
    except ConfigError as error:
        return print_errors(error)
    if not books:
        print(f"warning: no playbooks in {folder}: incidents are notified, never remediated",
              file=sys.stderr)  # fmt: skip
    inv = config.inventory
    print(
        f"{args.config}: ok ({len(inv.hosts)} hosts, {len(inv.services)} services, "
        f"{len(config.notify.receivers)} receivers, {len(books)} playbooks)"
    )
    return 0
