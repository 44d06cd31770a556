"""`lazarus notify test`: amtool config routes test (`lazarus ack` is in flows.cli: it emits an
event)."""

from __future__ import annotations

import argparse
import time

from lazarus.commands import UsageError, add_config, add_json, load, print_json
from lazarus.commands.silence import open_state
from lazarus.config import Config
from lazarus.notify.dispatch import groupings
from lazarus.notify.silences import active_silences, mute_reason, remediation_paused


def add_parsers(sub: argparse._SubParsersAction) -> None:
    notify = sub.add_parser("notify", help="notification routing tools")
    cmds = notify.add_subparsers(dest="notify_command", required=True)
    test = cmds.add_parser(
        "test", help="which receivers an alert with these labels reaches, and how it is grouped"
    )
    add_config(test)
    add_json(test)
    test.add_argument("--label", action="append", default=[], metavar="K=V",
                      help="a label of the alert (repeat for more)")  # fmt: skip
    test.add_argument("--verify-receivers", metavar="A,B",
                      help="exit 1 unless the receivers are exactly these")  # fmt: skip
    test.set_defaults(func=_test)


def _test(args: argparse.Namespace) -> int:
    labels = {}
    for item in args.label:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageError(f"--label {item!r} is not K=V")
        labels[key] = value
    config = load(args)
    routes = groupings(config.notify, labels)
    receivers = list(dict.fromkeys(g.receiver for g in routes))
    ok = args.verify_receivers is None or receivers == args.verify_receivers.split(",")
    if args.json:
        print_json({
            "receivers": receivers,
            "routes": [{"receiver": g.receiver, "route": g.path,
                        "group": g.group_labels(labels), "group_wait": g.group_wait,
                        "group_interval": g.group_interval,
                        "repeat_interval": g.repeat_interval} for g in routes],
            "muted": _muted(config, labels),
        })  # fmt: skip
        return 0 if ok else 1
    print(",".join(receivers))
    for g in routes:
        group = ", ".join(f'{k}="{v}"' for k, v in g.group_labels(labels).items())
        print(f"  {g.receiver}: route {g.path} group {{{group}}} wait {g.group_wait:g}s"
              f" interval {g.group_interval:g}s repeat {g.repeat_interval:g}s")  # fmt: skip
    muted = _muted(config, labels)
    if muted["notifications"]:
        print(f"  muted now: {muted['notifications']}")
    if muted["remediation"]:
        print(f"  remediation paused now: {muted['remediation']}")
    return 0 if ok else 1


def _muted(config: Config, labels: dict[str, str]) -> dict[str, str | None]:
    """Why an alert with ``labels`` is muted now, and why its remediation is paused (or None)."""
    state = open_state(config)
    try:
        now = time.time()
        with state.tx() as db:
            silences = active_silences(db, now)
        return {
            "notifications": mute_reason(labels, silences, config.notify, now),
            "remediation": remediation_paused(state, config.notify, labels, now),
        }
    finally:
        state.store.close()
