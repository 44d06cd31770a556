"""`lazarus playbook check|plan|reset-breaker`: validate playbooks, show a dry run, close a
breaker by hand."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from lazarus.commands import UsageError, add_config, add_json, load, print_errors, print_json
from lazarus.config import Config
from lazarus.errors import ConfigError, LazarusError
from lazarus.model import Incident, IncidentState
from lazarus.playbooks import Guards, Playbook, StepContext, load_dir, plan, select
from lazarus.store import store_for
from lazarus.yamlfile import ConfigErrorGroup


def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("playbook", help="check playbooks, show a dry-run plan, reset a breaker")
    cmds = p.add_subparsers(dest="playbook_cmd", required=True)
    c = cmds.add_parser("check", help="validate every playbook in DIR; exit 2 on any error")
    c.add_argument("dir", help="the playbooks folder")
    add_json(c)
    c.set_defaults(func=check)
    q = cmds.add_parser("plan", help="what the matching playbook would run for an incident")
    add_config(q)
    add_json(q)
    q.add_argument("--dir", default=None, help="playbooks folder (default: the config's)")
    q.add_argument(
        "--incident-json",
        required=True,
        help='{"host": ..., "service": ..., "symptom": ..., "labels": {...}}',
    )
    q.add_argument("--cause", default=None, help="the diagnosed cause a trigger may match")
    q.set_defaults(func=show_plan)
    r = cmds.add_parser("reset-breaker", help="close the circuit breaker of TARGET+PLAYBOOK")
    add_config(r)
    r.add_argument("target", help="service@host, as in the incident (e.g. web@web-1)")
    r.add_argument("playbook", help="the playbook whose breaker opened")
    r.set_defaults(func=reset_breaker)


def check(args: argparse.Namespace) -> int:
    if not Path(args.dir).is_dir():
        raise UsageError(f"{args.dir}: no such folder of playbooks")
    try:
        books = load_dir(Path(args.dir))
    except (ConfigErrorGroup, ConfigError) as exc:
        return print_errors(exc)
    if args.json:
        print_json({"dir": args.dir, "ok": True, "playbooks": sorted(books)})
    else:
        print(f"{args.dir}: ok ({len(books)} playbooks)")
    return 0


def show_plan(args: argparse.Namespace) -> int:
    try:
        config = load(args)
        books = load_dir(Path(args.dir) if args.dir else config.path(config.playbooks.dir))
    except (ConfigErrorGroup, ConfigError) as exc:
        return print_errors(exc)
    try:
        raw = json.loads(args.incident_json)
    except json.JSONDecodeError as exc:
        raise UsageError(f"--incident-json is not JSON: {exc}") from None
    if not isinstance(raw, dict):
        raise UsageError("--incident-json must be a JSON object")
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
    return print_plan(config, book, incident, as_json=args.json)


def dry_run(config: Config, incident_id: int, name: str, *, as_json: bool = False) -> int:
    """`lazarus recover --dry-run`: the plan for a stored incident, as recover would choose it
    (the named playbook, or the one matching the incident and its diagnosed cause). Runs no
    flow: nothing is changed and no run is left behind."""
    from lazarus.diagnose import diagnose

    books = load_dir(config.path(config.playbooks.dir))
    if name and name not in books:
        raise UsageError(
            f"no playbook named {name!r}; there are: {', '.join(sorted(books)) or '-'}"
        )
    store = store_for(config)
    try:
        try:
            incident = store.get(incident_id)
        except KeyError:
            raise UsageError(f"no incident {incident_id} in {config.state.path}") from None
        top = diagnose(store, config, incident).top
    finally:
        store.close()
    book = books[name] if name else select(books, incident, top.name if top else None)
    if book is None:
        print(f"no playbook matches incident #{incident_id} ({incident.fingerprint})")
        return 1
    return print_plan(config, book, incident, as_json=as_json)


def print_plan(config: Config, book: Playbook, incident: Incident, *, as_json: bool) -> int:
    """The exact argv per host of ``book`` for ``incident``; 2 when it cannot be planned."""
    try:
        steps = plan(book, StepContext(incident, config))
    except LazarusError as exc:
        print(f"error: {book.name}: {exc}", file=sys.stderr)
        return 2
    if as_json:
        print_json({
            "playbook": book.name,
            "approval": book.needs_approval(),
            "steps": [{"block": s.block, "id": s.id, "action": s.action, "host": s.host,
                       "argv": list(s.argv), "destructive": s.destructive} for s in steps],
        })  # fmt: skip
        return 0
    print(f"playbook {book.name} (approval {'required' if book.needs_approval() else 'no'})")
    for s in steps:
        mark = " [destructive]" if s.destructive else ""
        print(f"  {s.block}/{s.id}: {s.action} on {s.host}: {json.dumps(list(s.argv))}{mark}")
    return 0


def reset_breaker(args: argparse.Namespace) -> int:
    config = load(args)
    store = store_for(config)
    try:
        n = Guards(store).reset_breaker(args.target, args.playbook)
    finally:
        store.close()
    print(f"breaker of {args.playbook} on {args.target} closed ({n} restarts forgotten)")
    return 0
