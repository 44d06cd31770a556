"""`lazarus logs parse`: mine the templates of a log file into Loghub's structured CSV."""

from __future__ import annotations

import argparse
import csv
import sys

from lazarus.errors import ConfigError
from lazarus.logmine import LogFormat, TemplateMiner, iter_lines, state

DEFAULT_FORMAT = "<Content>"


def add_parsers(sub: argparse._SubParsersAction) -> None:
    logs = sub.add_parser("logs", help="log template mining")
    logs_sub = logs.add_subparsers(dest="logs_command", required=True)
    p = logs_sub.add_parser(
        "parse",
        help="write LineId,EventId,EventTemplate for every line of a log file",
        description="Templates are final: a line's EventId is its template after the whole "
        "file was mined, so lines of one template share one id.",
    )
    p.add_argument("--input", required=True, help="raw log file (LF or CRLF, any bytes)")
    p.add_argument(
        "--format",
        default=DEFAULT_FORMAT,
        help="header format, e.g. '<Date> <Time> <Level> <Component>: <Content>'",
    )
    p.add_argument("--output", required=True, help="CSV to write")
    p.add_argument("--state", help="miner state JSON to continue from and update")
    p.set_defaults(func=run_parse)


def run_parse(args: argparse.Namespace) -> int:
    try:
        log_format = LogFormat(args.format)
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    miner = state.load(TemplateMiner, args.state) if args.state else TemplateMiner()
    try:
        ids = [miner.add(log_format.content(line)).template_id for line in iter_lines(args.input)]
    except OSError as error:
        print(f"error: cannot read {args.input}: {error.strerror or error}", file=sys.stderr)
        return 2
    try:
        with open(args.output, "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(["LineId", "EventId", "EventTemplate"])
            for line_id, tid in enumerate(ids, start=1):
                live = miner.resolve(tid)
                writer.writerow([line_id, live, miner.clusters[live].text])
    except OSError as error:
        print(f"error: cannot write {args.output}: {error.strerror or error}", file=sys.stderr)
        return 2
    if args.state:
        state.save(miner, args.state)
    print(f"{args.output}: {len(ids)} lines, {len(miner.clusters)} templates", file=sys.stderr)
    return 0
