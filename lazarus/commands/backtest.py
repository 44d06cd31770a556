"""`lazarus backtest -c CONFIG --from T --to T`: what the detectors would have said on history."""

from __future__ import annotations

import argparse
import sys
import time
from datetime import UTC, datetime

from lazarus.commands import add_config, add_json, load, print_json
from lazarus.config import parse_duration
from lazarus.detect.replay import history, replay
from lazarus.errors import LazarusError


def parse_time(text: str, now: float | None = None) -> float:
    """``now``, ``-2h`` (ago), seconds since the epoch, or ISO 8601 (UTC unless it says)."""
    now = time.time() if now is None else now
    text = text.strip()
    if text == "now":
        return now
    if text.startswith("-"):
        return now - parse_duration(text[1:])
    try:
        return float(text)
    except ValueError:
        pass
    try:
        stamp = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a time (now, -2h, epoch seconds, ISO 8601)") from None
    return (stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)).timestamp()


def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "backtest",
        help="replay Prometheus history through the detectors; prints each anomaly's start",
    )
    add_config(p)
    add_json(p)
    p.add_argument("--from", dest="start", required=True, help="now, -2h, epoch or ISO 8601")
    p.add_argument("--to", dest="end", default="now", help="as --from (default: now)")
    p.add_argument("--step", default=None, help="replay step (default: the watch interval)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        config = load(args)
        start, end = parse_time(args.start), parse_time(args.end)
        step = parse_duration(args.step) if args.step else config.watch.interval
        if not (start < end and step > 0):
            raise ValueError("--from must be before --to, and --step positive")
        samples = history(config, start, end, step)
        anomalies = replay(config, samples)
    except (LazarusError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print_json([{"at": a.at, "fingerprint": a.fingerprint, "summary": a.summary}
                    for a in anomalies])  # fmt: skip
        return 0
    for a in anomalies:
        when = datetime.fromtimestamp(a.at, UTC).isoformat(timespec="seconds")
        print(f"{when}  {a.fingerprint}  {a.summary}")
    print(f"{len(anomalies)} anomalies in {len(samples)} points", file=sys.stderr)
    return 0
