"""`lazarus silence add|list|expire`: mute what matches for a while (amtool silence, offline).

Matchers take Alertmanager's syntax; ``--match host=web-1`` is short for ``host="web-1"``.
Silences live in the store, so every watch run and worker honours them at once.
"""

from __future__ import annotations

import argparse
import getpass
import sys
import time
from dataclasses import asdict
from datetime import UTC, datetime

from lazarus.commands import add_config, add_json, load, print_json
from lazarus.config import Config, parse_duration
from lazarus.errors import ConfigError, LazarusError
from lazarus.notify.route import parse_matchers
from lazarus.notify.silences import add_silence, expire_silence, list_silences
from lazarus.notify.state import NotifyState
from lazarus.store import store_for


def add_parsers(sub: argparse._SubParsersAction) -> None:
    silence = sub.add_parser("silence", help="mute notifications that match, for a while")
    cmds = silence.add_subparsers(dest="silence_command", required=True)
    add = cmds.add_parser("add", help="add a silence")
    add.add_argument("--match", action="append", required=True, metavar="K=V",
                     help='a label matcher (k=v, k!=v, k=~"re"); repeat for more')  # fmt: skip
    add.add_argument("--for", dest="duration", default="2h", help="how long (30m, 2h, 1d)")
    add.add_argument("--comment", required=True, help="why: shown in messages and reminders")
    add.add_argument("--by", default=login_name(), help="who adds it (default: the login name)")
    add.add_argument("--pause-remediation", action="store_true",
                     help="also stop automatic remediation of what matches")  # fmt: skip
    add.set_defaults(func=_add)
    ls = cmds.add_parser("list", help="active and pending silences")
    ls.add_argument("--all", action="store_true", help="expired ones too")
    ls.set_defaults(func=_list)
    expire = cmds.add_parser("expire", help="end a silence now")
    expire.add_argument("id", type=int, help="the silence number (lazarus silence list)")
    expire.set_defaults(func=_expire)
    for p in (add, ls, expire):
        add_config(p)
    add_json(ls)


def open_state(config: Config) -> NotifyState:
    """The notification state in the config's store (close with ``.store.close()``)."""
    return NotifyState(store_for(config))


def _add(args: argparse.Namespace) -> int:
    try:
        matchers = [str(m) for text in args.match for m in parse_matchers(text)]
        seconds = parse_duration(args.duration)
    except (ConfigError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    state = open_state(load(args))
    now = time.time()
    try:
        silence = add_silence(
            state, matchers, starts_at=now, ends_at=now + seconds, comment=args.comment,
            created_by=args.by, pause_remediation=args.pause_remediation,
        )  # fmt: skip
    except LazarusError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        state.store.close()
    print(f"silence #{silence.id} until {_when(silence.ends_at)}: {', '.join(matchers)}")
    return 0


def _list(args: argparse.Namespace) -> int:
    state = open_state(load(args))
    try:
        silences = list_silences(state, time.time(), expired=args.all)
    finally:
        state.store.close()
    if args.json:
        print_json([asdict(s) for s in silences])
        return 0
    if not silences:
        print("no silences")
    for s in silences:
        pause = " [pauses remediation]" if s.pause_remediation else ""
        print(f"#{s.id:<4} {_when(s.starts_at)} -> {_when(s.ends_at)}  {', '.join(s.matchers)}"
              f"  by {s.created_by}: {s.comment}{pause}")  # fmt: skip
    return 0


def _expire(args: argparse.Namespace) -> int:
    state = open_state(load(args))
    try:
        done = expire_silence(state, args.id, time.time())
    finally:
        state.store.close()
    print(f"silence #{args.id} expired" if done else f"no active silence #{args.id}")
    return 0 if done else 1


def login_name() -> str:
    """Who runs the command, for the record."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def _when(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%d %H:%M:%SZ")
