"""The sub-commands that run Prefect flows: demo, serve, watch, recover, deploy, approve, reject;
and ack, which emits its event to the Prefect server.

Registered through the ``lazarus.commands`` entry point (pyproject.toml), so the core CLI never
imports this layer. Prefect is imported only when one of these commands runs, after
``prefect_environment`` turned telemetry off. ``watch``, ``recover``, ``deploy``,
``auto-remediation`` and ``secrets`` work on the Prefect server that ``PREFECT_API_URL`` names and
say so in one line when none is set: a throw-away local database would lose the runs, switches
and secrets a person meant to keep. ``demo`` and ``serve`` (the loop) also run on a local one.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from pathlib import Path

from lazarus.commands import UsageError, add_config, add_json, config_path, load
from lazarus.config import Config


def prefect_environment(home: Path | None = None) -> None:
    """No telemetry, quiet logs; ``home`` (the demo's own folder) for a local Prefect."""
    if home is not None:
        home.mkdir(parents=True, exist_ok=True)
        os.environ.setdefault("PREFECT_HOME", str(home.resolve()))
    os.environ.setdefault("DO_NOT_TRACK", "1")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")


# The local server (a subprocess of this one: no UI, nobody else reaches it) records no task
# runs and keeps no events. Their writes, fed by every cycle's task runs, met each recover run's
# creation on its SQLite, which Prefect 3.9 reads before it writes: "database is locked", a 503
# its client retried 2, 4, 8, 16 and 32 s later, then gave up; the recover run started a minute
# late or crashed (seen in CI: two minutes before a killed service was restarted). Without
# them, none in 40 runs created beside a busy loop (bench-style, 1.1 s each, was 1-15 s).
LOCAL_SERVER = {
    "PREFECT_SERVER_SERVICES_TASK_RUN_RECORDER_ENABLED": "false",
    "PREFECT_SERVER_SERVICES_EVENT_PERSISTER_ENABLED": "false",
}


def local_server_environment() -> None:
    """Settings of Prefect's local server for a command that runs flows on it (``LOCAL_SERVER``);
    one set in the environment stays."""
    for name, value in LOCAL_SERVER.items():
        os.environ.setdefault(name, value)


def need_server(command: str) -> None:
    """Refuse, in one line, to run ``command`` without a Prefect server to keep what it does."""
    if not os.environ.get("PREFECT_API_URL"):
        raise UsageError(
            f"lazarus {command} needs a Prefect server: start one (prefect server start) and "
            "set PREFECT_API_URL=http://127.0.0.1:4200/api"
        )
    prefect_environment()


def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="sandbox + watch + a fault, healed end to end; then clean up")
    p.add_argument("--dir", type=Path, default=Path(".lazarus/demo"), help="sandbox state folder")
    p.add_argument("--hosts", type=int, default=3, help="number of sandbox hosts")
    p.add_argument("--fault", default="kill", choices=["kill", "hang", "error"],
                   help="what breaks the service on one host")  # fmt: skip
    p.add_argument("--keep", action="store_true", help="leave the sandbox up afterwards")
    p.set_defaults(func=_demo)

    p = sub.add_parser("serve", help="watch on the interval in this process; serve recover & co.")
    add_config(p)
    p.set_defaults(func=_serve)

    p = sub.add_parser("watch", help="run one watch cycle now")
    add_config(p)
    add_json(p)
    p.set_defaults(func=_watch)

    p = sub.add_parser("recover", help="run recovery for one incident now")
    add_config(p)
    add_json(p)
    p.add_argument("incident", type=int, help="the incident number (lazarus incidents)")
    p.add_argument("--dry-run", action="store_true",
                   help="print the exact plan; change nothing, start no flow run")  # fmt: skip
    p.add_argument("--playbook", default="", help="run this playbook instead of the matching one")
    p.set_defaults(func=_recover)

    p = sub.add_parser("ack", help="acknowledge an incident: stops escalation and repeats")
    add_config(p)
    p.add_argument("incident", type=int, help="the incident number (lazarus incidents)")
    p.add_argument("--by", default=None, help="who takes it (default: the login name)")
    p.add_argument("-m", "--comment", default="", help="a note for the team")
    p.set_defaults(func=_ack)

    for verb, says in (("approve", "run"), ("reject", "not run")):
        p = sub.add_parser(verb, help=f"answer a recover run's approval: {says} its plan")
        add_config(p)
        p.add_argument("incident", type=int, help="the incident whose recover run waits")
        p.add_argument("--as", dest="approver", required=True, help="your name, for the record")
        p.add_argument("-m", "--comment", default="", help="why, for the report and the team")
        p.set_defaults(func=_answer, decision=verb)

    p = sub.add_parser("deploy", help="register work pool and deployments on PREFECT_API_URL")
    add_config(p)
    p.add_argument("--pool", default="lazarus", help="process work pool name")
    p.add_argument("--shards", type=int, default=1, help="split the fleet over N watch runs")
    p.set_defaults(func=_deploy)

    p = sub.add_parser("auto-remediation", help="turn automatic recovery on or off, or show it")
    p.add_argument("state", choices=["on", "off", "status"], help="switch it, or show it")
    p.set_defaults(func=_auto_remediation)

    p = sub.add_parser("secrets", help="store secrets as Prefect Secret blocks")
    secrets_sub = p.add_subparsers(dest="action", required=True)
    s = secrets_sub.add_parser("set", help="read NAME's value from stdin (not echoed), save it")
    s.add_argument("name", help="the block name; the config says secret:NAME")
    s.set_defaults(func=_secrets_set)


def _demo(args: argparse.Namespace) -> int:
    prefect_environment(args.dir / "prefect")
    local_server_environment()
    from flows.demo import run_demo

    return run_demo(args.dir, hosts=args.hosts, fault=args.fault, keep=args.keep)


def _serve(args: argparse.Namespace) -> int:
    """The loop runs without a Prefect server too (flows.serve): Prefect's local database then
    lives beside the config's state, never in the folder the command runs from."""
    path = config_path(args)
    if os.environ.get("PREFECT_API_URL"):
        prefect_environment()
    else:
        config = load(args)
        prefect_environment(config.path(config.state.path).parent / "prefect")
        local_server_environment()
    from flows.serve import serve_flows

    # SIGTERM (kill, systemd, supervisord) ends serve as Ctrl-C does, through Python's exit:
    # that stops Prefect's local server, a process of its own. Prefect's engine passes the
    # signal on to this handler; the default one ended serve alone and left that server running.
    signal.signal(signal.SIGTERM, lambda signum, _: sys.exit(128 + signum))
    serve_flows(path)
    return 0


def _watch(args: argparse.Namespace) -> int:
    path = config_path(args)
    need_server("watch")
    from flows.watch import watch

    counts = watch(str(path))
    if args.json:
        from lazarus.commands import print_json

        print_json(counts)
    else:
        print(counts)
    return 0


def _recover(args: argparse.Namespace) -> int:
    if args.dry_run:
        from lazarus.commands.playbooks import dry_run

        return dry_run(load(args), args.incident, args.playbook, as_json=args.json)
    path = config_path(args)
    from lazarus.playbooks import load_dir

    config = load(args)
    books = load_dir(config.path(config.playbooks.dir))
    if args.playbook and args.playbook not in books:
        raise UsageError(
            f"no playbook named {args.playbook!r}; there are: {', '.join(sorted(books)) or '-'}"
        )
    _known_incident(config, args.incident)
    need_server("recover")
    from flows.recover import run_recover

    outcome = run_recover(
        args.incident, str(path), actor=os.environ.get("USER", "cli"), playbook=args.playbook
    )
    if args.json:
        from lazarus.commands import print_json

        print_json({"incident": args.incident, "outcome": outcome})
    else:
        print(outcome)
    # 0 only when it acted and the symptom cleared: "skipped", "paused", "no playbook" and
    # "escalated" all leave the incident to a person
    return 0 if outcome == "resolved" or outcome.startswith("dry-run") else 1


def _known_incident(config: Config, incident_id: int) -> None:
    """UsageError (exit 2, one line) for an id the store does not hold, before a flow starts."""
    from lazarus.store import Store

    state = config.path(config.state.path)
    if state.exists():
        store = Store(state)
        try:
            store.get(incident_id)
            return
        except KeyError:
            pass
        finally:
            store.close()
    raise UsageError(f"no incident {incident_id} in {state}: `lazarus incidents` lists them")


def _auto_remediation(args: argparse.Namespace) -> int:
    need_server("auto-remediation")
    from tasks.switch import auto_remediation, set_auto_remediation

    if args.state != "status":
        set_auto_remediation(args.state)
    print("auto-remediation", "on" if auto_remediation() else "off")
    return 0


def _secrets_set(args: argparse.Namespace) -> int:
    """Save a Secret block; the value comes from a hidden prompt or piped stdin, never argv."""
    import getpass
    import sys

    need_server("secrets set")
    value = getpass.getpass(f"{args.name}: ") if sys.stdin.isatty() else sys.stdin.read()
    value = value.rstrip("\n")
    if not value:
        raise UsageError("no value given; nothing saved")
    from prefect.blocks.system import Secret

    Secret(value=value).save(args.name, overwrite=True)
    print(f"saved secret {args.name}")
    return 0


def _deploy(args: argparse.Namespace) -> int:
    path = config_path(args)
    need_server("deploy")
    from flows.deploy import PREFECT_FILE, ROOT, deploy

    for deployment_id in deploy(path, pool=args.pool, shards=args.shards):
        print("deployment-id", deployment_id)
    print(f"wrote {PREFECT_FILE.relative_to(ROOT)}: prefect deploy --all re-applies the same")
    return 0


def _ack(args: argparse.Namespace) -> int:
    """`lazarus ack -c CONFIG ID`: in the audit, to the team, and, with a Prefect server, as the
    ``lazarus.incident.acknowledged`` event (the store is the record; no server, no event)."""
    import sys
    import time

    from lazarus.commands.silence import login_name, open_state
    from lazarus.notify.announce import take
    from lazarus.notify.escalation import AckInput
    from lazarus.notify.links import Reach

    config = load(args)
    ack = AckInput(acknowledged_by=args.by or login_name(), comment=args.comment)
    state = open_state(config)
    try:
        reach = Reach(str(config_path(args)))
        taken = take(state, config.notify, args.incident, ack, reach, time.time())
    finally:
        state.store.close()
    if taken is None:
        print(f"incident {args.incident} has no firing alert to acknowledge")
        return 1
    incident, missed = taken
    by = ack.acknowledged_by + (f" ({ack.comment})" if ack.comment else "")
    print(f"acknowledged incident #{incident.id} {incident.fingerprint} by {by}")
    if missed:
        print(f"warning: {missed} receiver(s) did not get the news", file=sys.stderr)
    if os.environ.get("PREFECT_API_URL"):
        prefect_environment()
        from tasks.events import emit_incident

        emit_incident(incident, "acknowledged", by=ack.acknowledged_by, comment=ack.comment)
    else:
        print("no Prefect server (PREFECT_API_URL): no event emitted", file=sys.stderr)
    return 0


def _answer(args: argparse.Namespace) -> int:
    """`lazarus approve|reject INCIDENT --as NAME`: the same answer as the pause form's."""
    config = load(args)
    need_server(args.decision)
    from flows.approval import answer

    said = answer(config, args.incident, args.approver, args.decision, args.comment)
    print(said)
    return 0 if said.startswith(f"{args.decision}d") else 1
