"""`lazarus notify test` (amtool config routes test) and `lazarus ack` (stop the pages)."""

from __future__ import annotations

import argparse
import sys
import time

from lazarus.commands.silence import login_name, open_state
from lazarus.config import load_config
from lazarus.notify.dispatch import groupings
from lazarus.notify.escalation import AckInput, acknowledge
from lazarus.notify.silences import active_silences, mute_reason, remediation_paused


def add_parsers(sub: argparse._SubParsersAction) -> None:
    notify = sub.add_parser("notify", help="notification routing tools")
    cmds = notify.add_subparsers(dest="notify_command", required=True)
    test = cmds.add_parser(
        "test", help="which receivers an alert with these labels reaches, and how it is grouped"
    )
    test.add_argument("config")
    test.add_argument("--label", action="append", default=[], metavar="K=V")
    test.add_argument("--verify-receivers", metavar="A,B",
                      help="exit 1 unless the receivers are exactly these")  # fmt: skip
    test.set_defaults(func=_test)
    ack = sub.add_parser("ack", help="acknowledge an incident: stops escalation and repeats")
    ack.add_argument("config")
    ack.add_argument("incident", type=int)
    ack.add_argument("--by", default=None, help="who takes it (default: the login name)")
    ack.add_argument("--comment", default="")
    ack.set_defaults(func=_ack)


def _test(args: argparse.Namespace) -> int:
    labels = {}
    for item in args.label:
        key, sep, value = item.partition("=")
        if not sep or not key:
            print(f"error: --label {item!r} is not K=V", file=sys.stderr)
            return 2
        labels[key] = value
    config = load_config(args.config)
    routes = groupings(config.notify, labels)
    receivers = list(dict.fromkeys(g.receiver for g in routes))
    print(",".join(receivers))
    for g in routes:
        group = ", ".join(f'{k}="{v}"' for k, v in g.group_labels(labels).items())
        print(f"  {g.receiver}: route {g.path} group {{{group}}} wait {g.group_wait:g}s"
              f" interval {g.group_interval:g}s repeat {g.repeat_interval:g}s")  # fmt: skip
    state = open_state(config)
    try:
        now = time.time()
        with state.tx() as db:
            silences = active_silences(db, now)
        muted = mute_reason(labels, silences, config.notify, now)
        paused = remediation_paused(state, config.notify, labels, now)
    finally:
        state.store.close()
    if muted:
        print(f"  muted now: {muted}")
    if paused:
        print(f"  remediation paused now: {paused}")
    if args.verify_receivers is not None:
        return 0 if receivers == args.verify_receivers.split(",") else 1
    return 0


def _ack(args: argparse.Namespace) -> int:
    state = open_state(load_config(args.config))
    try:
        ack = AckInput(acknowledged_by=args.by or login_name(), comment=args.comment)
        alert = acknowledge(state, args.incident, ack, time.time())
    finally:
        state.store.close()
    if alert is None:
        print(f"incident {args.incident} has no firing alert to acknowledge")
        return 1
    print(f"acknowledged {alert.fingerprint} (incident {args.incident}) by {alert.acked_by}")
    return 0
