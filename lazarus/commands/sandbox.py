"""`lazarus sandbox up|down|status|fault`: real hosts on this machine to try Lazarus against."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

from lazarus.sandbox import FAULTS, POWER, Sandbox, SandboxError

DEFAULT_DIR = ".lazarus/sandbox"


def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("sandbox", help="start, break and stop a sandbox of real hosts (root)")
    actions = p.add_subparsers(dest="sandbox_command", required=True)

    up = actions.add_parser("up", help="start sshd + supervisord + a web service per host")
    up.add_argument("--hosts", type=int, default=3, help="number of hosts (default 3)")
    up.add_argument("--name", default="demo", help="sandbox name, 1-8 letters/digits")
    up.add_argument("--subnet", type=int, default=213, help="hosts get 10.<subnet>.0.11 ...")
    up.set_defaults(func=_up)

    down = actions.add_parser("down", help="stop everything the sandbox started")
    down.set_defaults(func=_down)

    status = actions.add_parser("status", help="each host's address, service PID and /health")
    status.set_defaults(func=_status)

    fault = actions.add_parser("fault", help="inject (or clear) a fault on one host")
    fault.add_argument("host", help="host name, e.g. web-1")
    fault.add_argument("mode", choices=FAULTS, help="the fault to inject, or clear")
    fault.set_defaults(func=_fault)

    power = actions.add_parser(
        "power", help="the hosts' out-of-band power switch (as IPMI): on, off or cycle"
    )
    power.add_argument("host", help="host name, e.g. web-2")
    power.add_argument("action", choices=POWER, help="on, off or cycle (off, then on)")
    power.set_defaults(func=_power)

    for parser in (up, down, status, fault, power):
        parser.add_argument(
            "--dir",
            type=Path,
            default=Path(DEFAULT_DIR),
            help=f"sandbox folder (default {DEFAULT_DIR})",
        )


def _up(args: argparse.Namespace) -> int:
    try:
        sb = Sandbox.up(args.dir, name=args.name, hosts=args.hosts, subnet=args.subnet)
    except SandboxError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    _print_status(sb)
    print(f"config: {sb.config_path}\ntry: lazarus check -c {sb.config_path}")
    return 0


def _down(args: argparse.Namespace) -> int:
    def stop(sb: Sandbox) -> None:
        sb.down()
        print(f"sandbox {sb.name!r} is down")

    return _with_sandbox(args, stop)


def _status(args: argparse.Namespace) -> int:
    return _with_sandbox(args, _print_status)


def _fault(args: argparse.Namespace) -> int:
    def inject(sb: Sandbox) -> None:
        sb.fault(args.host, args.mode)
        print(f"{args.host}: {args.mode} (health now {sb.health(args.host) or 'no answer'})")

    return _with_sandbox(args, inject)


def _power(args: argparse.Namespace) -> int:
    def switch(sb: Sandbox) -> None:
        sb.power(args.host, args.action)
        print(
            f"{args.host}: power {args.action} (health now {sb.health(args.host) or 'no answer'})"
        )

    return _with_sandbox(args, switch)


def _with_sandbox(args: argparse.Namespace, action: Callable[[Sandbox], None]) -> int:
    try:
        action(Sandbox.load(args.dir))
    except SandboxError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


def _print_status(sb: Sandbox) -> None:
    print(f"sandbox {sb.name!r} in {sb.root}")
    for h in sb.hosts:
        pid = sb.service_pid(h.name)
        health = sb.health(h.name)
        print(
            f"  {h.name:<8} {h.address}:{h.ssh_port:<5} web pid {pid or '-':<7}"
            f" /health {health or 'no answer'}"
        )
