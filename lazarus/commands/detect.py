"""`lazarus detect --input IN.csv --output OUT.csv`: score a NAB-format series file."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from lazarus.detect.csvfile import detect_file


def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "detect",
        help="score a timestamp,value CSV; writes the rows plus anomaly_score in [0, 1]",
    )
    p.add_argument("--input", required=True, type=Path, help="CSV with header timestamp,value")
    p.add_argument("--output", required=True, type=Path, help="where to write the scored CSV")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        labelled = detect_file(args.input, args.output)
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"{args.output}: scored; {len(labelled)} row(s) the watch would label:")
    for place, label in labelled:
        print(f"  {place}: {label.text()}")
    return 0
