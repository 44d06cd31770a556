"""`lazarus snapshot take|list|verify|prune [-c CONFIG] [DATABASE]`: what restore relies on.

``take`` snapshots and at once verifies on a scratch copy (the sidecar says good or bad);
``verify`` re-checks existing ones; ``prune`` applies retention (keep, daily, weekly) and
removes leftovers of killed runs. Without DATABASE every database of the config is meant.
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime

from cronsim import CronSim

from lazarus import snapshots
from lazarus.commands import add_config, load, print_errors
from lazarus.config import Config, Database
from lazarus.errors import ConfigError, LazarusError


def add_parsers(sub: argparse._SubParsersAction) -> None:
    snap = sub.add_parser("snapshot", help="take, list, verify and prune database snapshots")
    cmds = snap.add_subparsers(dest="snapshot_command", required=True)
    for name, func, text in (
        ("take", _take, "snapshot now and verify it on a scratch copy"),
        ("list", _list, "snapshots newest first, with their verdict and reason"),
        ("verify", _verify, "restore each into a scratch copy, run the checks, mark good/bad"),
        ("prune", _prune, "apply retention; remove partial and orphaned files"),
    ):
        p = cmds.add_parser(name, help=text)
        add_config(p)
        p.add_argument("database", nargs="?", help="one database (default: all of them)")
        p.set_defaults(func=func)


def selected(config: Config, name: str | None) -> list[Database]:
    """The named database, or all; an unknown name is a ConfigError naming the choices."""
    dbs = config.inventory.databases
    if name is None:
        return list(dbs)
    found = [d for d in dbs if d.name == name]
    if not found:
        known = ", ".join(d.name for d in dbs) or "none"
        raise ConfigError(f"no database named {name!r} in inventory.databases (there are: {known})")
    return found


def _each(args: argparse.Namespace, work) -> int:
    try:
        config = load(args)
        dbs = selected(config, args.database)
    except ConfigError as error:
        return print_errors(error)
    failed = 0
    for db in dbs:
        try:
            failed += int(bool(work(config, db)))
        except LazarusError as exc:
            print(f"{db.name}: FAILED: {exc}", file=sys.stderr)
            failed += 1
    return 1 if failed else 0


def _take(args: argparse.Namespace) -> int:
    def take(config: Config, db: Database) -> bool:
        snap = snapshots.take(db, config.path(db.snapshots.dir))
        print(f"{db.name}: {snap.path} ({snap.size:,} bytes) {snap.verdict}: {snap.verdict_detail}")
        return snap.verdict != "good"

    return _each(args, take)


def _list(args: argparse.Namespace) -> int:
    def show(config: Config, db: Database) -> bool:
        folder = config.path(db.snapshots.dir)
        found = snapshots.list_snapshots(folder, db.name)
        due = ""
        if db.snapshots.schedule:
            nxt = next(CronSim(db.snapshots.schedule, datetime.now(UTC)))
            due = f", next scheduled {nxt:%Y-%m-%d %H:%M} UTC"
        print(f"{db.name}: {len(found)} snapshot(s) in {folder}{due}")
        for s in found:
            print(
                f"  {s.created_at:%Y-%m-%d %H:%M:%S}  {s.verdict or 'unverified':10} "
                f"{s.reason:9} {s.size:>12,}  {s.path.name}"
            )
        return False

    return _each(args, show)


def _verify(args: argparse.Namespace) -> int:
    def verify(config: Config, db: Database) -> bool:
        bad = False
        for s in snapshots.list_snapshots(config.path(db.snapshots.dir), db.name):
            marked = snapshots.verify_on_scratch(db, s)
            print(f"{db.name}: {s.path.name}: {marked.verdict}: {marked.verdict_detail}")
            bad |= marked.verdict != "good" and s.reason == "scheduled"
        return bad

    return _each(args, verify)


def _prune(args: argparse.Namespace) -> int:
    def prune(config: Config, db: Database) -> bool:
        keep = db.snapshots
        removed = snapshots.prune(config.path(keep.dir), db.name, keep.keep,
                                  daily=keep.daily, weekly=keep.weekly)  # fmt: skip
        print(f"{db.name}: removed {len(removed)}" + "".join(f"\n  {p}" for p in removed))
        return False

    return _each(args, prune)
