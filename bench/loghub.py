"""Loghub-2k: grouping accuracy of lazarus.logmine per data set, and throughput against drain3.

    python bench/loghub.py            # data from ../shared/data/loghub (or $LAZARUS_DATA/loghub)

Grouping accuracy (GA): a line is right when the set of lines in its predicted group equals the
set of lines in its true group (ground truth: EventId of ``<D>_2k.log_structured.csv``). One
generic configuration for every data set: the miner has no per-source settings at all.

Throughput: every data set's messages interleaved into one mixed stream, fed line by line to a
fresh miner with cold token caches; drain3 (PyPI) runs on the same stream in the same process
with the masking, depth and similarity of drain3's own example configuration. Best of
``--repeat`` alternating runs each. For reference, the same stream once more through a miner
that has learned it (the steady state of a long-running watcher).
"""

from __future__ import annotations

import argparse
import csv
import itertools
import json
import os
import sys
import time
from collections import defaultdict
from pathlib import Path

from lazarus.logmine import LogFormat, TemplateMiner, iter_lines, masking

# drain3's examples/drain3.ini, verbatim: its generic masks, depth 4, similarity 0.4.
DRAIN3_MASKS = [
    (r"((?<=[^A-Za-z0-9])|^)(([0-9a-f]{2,}:){3,}([0-9a-f]{2,}))((?=[^A-Za-z0-9])|$)", "ID"),
    (r"((?<=[^A-Za-z0-9])|^)(\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3})((?=[^A-Za-z0-9])|$)", "IP"),
    (r"((?<=[^A-Za-z0-9])|^)([0-9a-f]{6,} ?){3,}((?=[^A-Za-z0-9])|$)", "SEQ"),
    (r"((?<=[^A-Za-z0-9])|^)([0-9A-F]{4} ?){4,}((?=[^A-Za-z0-9])|$)", "SEQ"),
    (r"((?<=[^A-Za-z0-9])|^)(0x[a-f0-9A-F]+)((?=[^A-Za-z0-9])|$)", "HEX"),
    (r"((?<=[^A-Za-z0-9])|^)([\-\+]?\d+)((?=[^A-Za-z0-9])|$)", "NUM"),
    (r"(?<=executed cmd )(\".+?\")", "CMD"),
]


def data_dir() -> Path:
    root = os.environ.get("LAZARUS_DATA") or Path(__file__).resolve().parents[2] / "shared/data"
    return Path(root) / "loghub"


def load(base: Path, name: str, spec: str) -> tuple[list[str], list[str]]:
    """Messages of one data set and their true EventIds, line for line."""
    log_format = LogFormat(spec)
    messages = [log_format.content(line) for line in iter_lines(base / name / f"{name}_2k.log")]
    with open(base / name / f"{name}_2k.log_structured.csv", newline="", encoding="utf-8") as f:
        truth = [row["EventId"] for row in csv.DictReader(f)]
    if len(messages) != len(truth):
        raise SystemExit(f"{name}: {len(messages)} log lines but {len(truth)} truth rows")
    return messages, truth


def grouping_accuracy(predicted: list[str], truth: list[str]) -> float:
    groups_p: dict[str, set[int]] = defaultdict(set)
    groups_t: dict[str, set[int]] = defaultdict(set)
    for i, (p, t) in enumerate(zip(predicted, truth, strict=True)):
        groups_p[p].add(i)
        groups_t[t].add(i)
    right = sum(1 for p, t in zip(predicted, truth, strict=True) if groups_p[p] == groups_t[t])
    return right / len(truth)


def lazarus_groups(messages: list[str]) -> list[str]:
    miner = TemplateMiner()
    ids = [miner.add(m).template_id for m in messages]
    return [miner.resolve(i) for i in ids]


def drain3_miner():
    from drain3 import TemplateMiner as Drain3
    from drain3.masking import MaskingInstruction
    from drain3.template_miner_config import TemplateMinerConfig

    config = TemplateMinerConfig()
    config.profiling_enabled = False
    config.drain_depth, config.drain_sim_th, config.drain_max_children = 4, 0.4, 100
    config.drain_extra_delimiters = ["_"]
    config.masking_instructions = [MaskingInstruction(p, m) for p, m in DRAIN3_MASKS]
    return Drain3(config=config)


def drain3_groups(messages: list[str]) -> list[str]:
    miner = drain3_miner()
    ids = [miner.add_log_message(m)["cluster_id"] for m in messages]
    return [str(i) for i in ids]


def lines_per_second(stream: list[str], feed) -> float:
    start = time.perf_counter()
    feed(stream)
    return len(stream) / (time.perf_counter() - start)


def feed_lazarus(stream: list[str]) -> None:
    masking.clear_caches()  # a cold start: the token caches learn inside the measured run
    add = TemplateMiner().add
    for message in stream:
        add(message)


def warm_lines_per_second(stream: list[str]) -> float:
    """Steady state: the stream again through a miner that has already learned it."""
    miner = TemplateMiner()
    for message in stream:
        miner.add(message)
    start = time.perf_counter()
    for message in stream:
        miner.add(message)
    return len(stream) / (time.perf_counter() - start)


def feed_drain3(stream: list[str]) -> None:
    add = drain3_miner().add_log_message
    for message in stream:
        add(message)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="throughput runs, best counts")
    parser.add_argument("--no-drain3", action="store_true", help="skip the drain3 reference")
    args = parser.parse_args()
    base = data_dir()
    formats = json.loads((base / "log_formats.json").read_text(encoding="utf-8"))
    sets = {name: load(base, name, spec) for name, spec in sorted(formats.items())}

    print(f"{'data set':<10} {'lines':>6} {'GA':>6} {'drain3 GA':>10}")
    scores, d3_scores = [], []
    for name, (messages, truth) in sets.items():
        ga = grouping_accuracy(lazarus_groups(messages), truth)
        scores.append(ga)
        d3 = "" if args.no_drain3 else grouping_accuracy(drain3_groups(messages), truth)
        if d3 != "":
            d3_scores.append(d3)
        print(f"{name:<10} {len(messages):>6} {ga:>6.3f} {d3 if d3 == '' else f'{d3:.3f}':>10}")
    average = sum(scores) / len(scores)
    d3_avg = f"{sum(d3_scores) / len(d3_scores):.3f}" if d3_scores else ""
    print(f"{'average':<10} {'':>6} {average:>6.3f} {d3_avg:>10}")

    columns = [messages for messages, _ in sets.values()]
    stream = [m for row in itertools.zip_longest(*columns) for m in row if m is not None]
    ours, theirs = 0.0, 0.0
    for _ in range(args.repeat):  # alternate, so load from elsewhere hits both alike
        ours = max(ours, lines_per_second(stream, feed_lazarus))
        if not args.no_drain3:
            theirs = max(theirs, lines_per_second(stream, feed_drain3))
    print(f"\nmixed stream of {len(stream)} lines ({len(sets)} data sets interleaved)")
    print(f"lazarus.logmine  {ours:>10,.0f} lines/s")
    warm = max(warm_lines_per_second(stream) for _ in range(args.repeat))
    print(f"  (already learned: {warm:,.0f} lines/s)")
    if theirs:
        print(f"drain3           {theirs:>10,.0f} lines/s   (lazarus is {ours / theirs:.1f}x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
