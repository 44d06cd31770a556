"""`lazarus playbook check|plan|reset-breaker`: validate playbooks, show a dry run, close a
breaker by hand."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from lazarus.commands import print_errors
from lazarus.config import load_config
from lazarus.errors import ConfigError, LazarusError
from lazarus.model import Incident, IncidentState
from lazarus.playbooks import Guards, StepContext, load_dir, plan, select
from lazarus.store import Store
from lazarus.yamlfile import ConfigErrorGroup


def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("playbook", help="check playbooks, show a dry-run plan, reset a breaker")
    cmds = p.add_subparsers(dest="playbook_cmd", required=True)
    c = cmds.add_parser("check", help="validate every playbook in DIR; exit 2 on any error")
    c.add_argument("dir")
    c.set_defaults(func=check)
    q = cmds.add_parser("plan", help="what the matching playbook would run for an incident")
    q.add_argument("dir")
    q.add_argument("--config", required=True)
    q.add_argument(
        "--incident-json",
        required=True,
        help='{"host": ..., "service": ..., "symptom": ..., "labels": {...}}',
    )
    q.add_argument("--cause", default=None)
    q.set_defaults(func=show_plan)
    r = cmds.add_parser("reset-breaker", help="close the circuit breaker of TARGET+PLAYBOOK")
    r.add_argument("config")
    r.add_argument("target")
    r.add_argument("playbook")
    r.set_defaults(func=reset_breaker)


def check(args: argparse.Namespace) -> int:
    try:
        books = load_dir(Path(args.dir))
    except (ConfigErrorGroup, ConfigError) as exc:
        return print_errors(exc)
    print(f"{args.dir}: ok ({len(books)} playbooks)")
    return 0


def show_plan(args: argparse.Namespace) -> int:
    try:
        config = load_config(args.config, check_secrets=False)
        books = load_dir(Path(args.dir))
    except (ConfigErrorGroup, ConfigError) as exc:
        return print_errors(exc)
    raw = json.loads(args.incident_json)
    incident = Incident(
        0,
        "",
        raw.get("host", ""),
        raw.get("service", ""),
        raw.get("symptom", ""),
        raw.get("severity", "critical"),
        IncidentState.OPEN,
        "",
        dict(raw.get("labels", {})),
        0.0,
    )
    book = select(books, incident, args.cause)
    if book is None:
        print("no playbook matches this incident")
        return 1
    try:
        steps = plan(book, StepContext(incident, config))
    except LazarusError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"playbook {book.name} (approval {'required' if book.needs_approval() else 'no'})")
    for s in steps:
        mark = " [destructive]" if s.destructive else ""
        print(f"  {s.block}/{s.id}: {s.action} on {s.host}: {json.dumps(list(s.argv))}{mark}")
    return 0


def reset_breaker(args: argparse.Namespace) -> int:
    config = load_config(args.config, check_secrets=False)
    store = Store(config.path(config.state.path))
    try:
        n = Guards(store).reset_breaker(args.target, args.playbook)
    finally:
        store.close()
    print(f"breaker of {args.playbook} on {args.target} closed ({n} runs forgotten)")
    return 0
