"""`lazarus check -c CONFIG`: validate a config and resolve its secret references."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from lazarus.commands import add_config, add_json, config_path, print_errors, print_json
from lazarus.config import Config, field_error, load_config
from lazarus.errors import ConfigError
from lazarus.yamlfile import read_yaml


def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("check", help="validate a config file; exit 2 on any error")
    add_config(p)
    add_json(p)
    p.add_argument("--no-secrets", action="store_true", help="do not resolve secret references")
    p.set_defaults(func=run)


def check_ssh_key(path: Path, config: Config) -> None:
    """Load (and decrypt) the SSH key now: an encrypted, unreadable or wrongly unlocked key
    fails here with the line to fix, not in every watch run."""
    from lazarus.remote.ssh import load_client_key  # only `check` pays for paramiko

    try:
        load_client_key(config.inventory.ssh, config.base_dir)
    except ConfigError as exc:
        _, lines = read_yaml(path)
        raise field_error(path, lines, exc.field, exc.reason) from None


def run(args: argparse.Namespace) -> int:
    path = config_path(args)
    try:
        config = load_config(path, check_secrets=not args.no_secrets)
    except ConfigError as error:  # a ConfigErrorGroup holds every error of the file
        return print_errors(error)
    if not args.no_secrets:
        try:
            check_ssh_key(Path(path), config)
        except ConfigError as error:
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
    counts = {
        "hosts": len(inv.hosts),
        "services": len(inv.services),
        "receivers": len(config.notify.receivers),
        "playbooks": len(books),
    }
    if args.json:
        print_json({"config": str(path), "ok": True, **counts})
    else:
        print(f"{path}: ok (" + ", ".join(f"{n} {k}" for k, n in counts.items()) + ")")
    return 0
