"""The sub-commands that run Prefect flows: demo, serve, watch, recover.

Registered through the ``lazarus.commands`` entry point (pyproject.toml), so the core CLI never
imports this layer. Prefect is imported only when one of these commands runs, after
``prefect_environment`` has pointed it at a project-local home with telemetry off.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path


def prefect_environment(home: Path = Path(".lazarus/prefect")) -> None:
    """Project-local Prefect state, no telemetry, patience for a slow ephemeral server start."""
    home.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("PREFECT_HOME", str(home.resolve()))
    os.environ.setdefault("DO_NOT_TRACK", "1")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")


def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="sandbox + watch + a fault, healed end to end; then clean up")
    p.add_argument("--dir", type=Path, default=Path(".lazarus/demo"), help="sandbox state folder")
    p.add_argument("--hosts", type=int, default=3)
    p.add_argument("--fault", default="kill", choices=["kill", "hang", "error"])
    p.add_argument("--keep", action="store_true", help="leave the sandbox up afterwards")
    p.set_defaults(func=_demo)

    p = sub.add_parser("serve", help="watch on the interval in this process; serve recover & co.")
    p.add_argument("config")
    p.set_defaults(func=_serve)

    p = sub.add_parser("watch", help="run one watch cycle now")
    p.add_argument("config")
    p.set_defaults(func=_watch)

    p = sub.add_parser("recover", help="run recovery for one incident now")
    p.add_argument("config")
    p.add_argument("incident", type=int)
    p.add_argument("--dry-run", action="store_true", help="print what would run; change nothing")
    p.add_argument("--playbook", default="", help="run this playbook instead of the matching one")
    p.set_defaults(func=_recover)

    p = sub.add_parser("deploy", help="register work pool and deployments on PREFECT_API_URL")
    p.add_argument("config")
    p.add_argument("--pool", default="lazarus", help="process work pool name")
    p.add_argument("--shards", type=int, default=1, help="split the fleet over N watch runs")
    p.set_defaults(func=_deploy)

    p = sub.add_parser("auto-remediation", help="turn automatic recovery on or off, or show it")
    p.add_argument("state", choices=["on", "off", "status"])
    p.set_defaults(func=_auto_remediation)

    p = sub.add_parser("secrets", help="store secrets as Prefect Secret blocks")
    secrets_sub = p.add_subparsers(dest="action", required=True)
    s = secrets_sub.add_parser("set", help="read NAME's value from stdin (not echoed), save it")
    s.add_argument("name")
    s.set_defaults(func=_secrets_set)


def _demo(args: argparse.Namespace) -> int:
    prefect_environment()
    from flows.demo import run_demo

    return run_demo(args.dir, hosts=args.hosts, fault=args.fault, keep=args.keep)


def _serve(args: argparse.Namespace) -> int:
    prefect_environment()
    from flows.serve import serve_flows

    serve_flows(Path(args.config).resolve())
    return 0


def _watch(args: argparse.Namespace) -> int:
    prefect_environment()
    from flows.watch import watch

    print(watch(str(Path(args.config).resolve())))
    return 0


def _recover(args: argparse.Namespace) -> int:
    prefect_environment()
    from flows.recover import recover

    outcome = recover(
        args.incident,
        str(Path(args.config).resolve()),
        dry_run=args.dry_run,
        actor=os.environ.get("USER", "cli"),
        playbook=args.playbook,
    )
    print(outcome)
    return 0 if outcome in ("resolved",) or outcome.startswith(("dry-run", "skipped")) else 1


def _auto_remediation(args: argparse.Namespace) -> int:
    prefect_environment()
    from tasks.switch import auto_remediation, set_auto_remediation

    if args.state != "status":
        set_auto_remediation(args.state)
    print("auto-remediation", "on" if auto_remediation() else "off")
    return 0


def _secrets_set(args: argparse.Namespace) -> int:
    """Save a Secret block; the value comes from a hidden prompt or piped stdin, never argv."""
    import getpass
    import sys

    value = getpass.getpass(f"{args.name}: ") if sys.stdin.isatty() else sys.stdin.read()
    value = value.rstrip("\n")
    if not value:
        print("no value given; nothing saved", file=sys.stderr)
        return 2
    prefect_environment()
    from prefect.blocks.system import Secret

    Secret(value=value).save(args.name, overwrite=True)
    print(f"saved secret {args.name}")
    return 0


def _deploy(args: argparse.Namespace) -> int:
    """Needs PREFECT_API_URL pointing at a running server; an ephemeral one would be lost."""
    if not os.environ.get("PREFECT_API_URL"):
        print("set PREFECT_API_URL to your Prefect server (e.g. http://127.0.0.1:4200/api)")
        return 2
    prefect_environment()
    from flows.deploy import deploy

    for deployment_id in deploy(Path(args.config), pool=args.pool, shards=args.shards):
        print("deployment-id", deployment_id)
    return 0
