"""NAB v1.1 score of `lazarus detect` over ../shared/data/nab (or $LAZARUS_DATA/nab).

Scoring follows numenta/NAB's published rules (nab/sweeper.py, nab/scorer.py, config/profiles.json):
every row gets a sweep score from a scaled sigmoid of its position relative to the anomaly windows
(inside a window: earlier is better, only the best detection per window counts; outside: a false
positive costs less the closer it follows a window); rows in the probationary period (first 15% of
a file, at most 750 rows) are not scored; one threshold is swept over all files at once per
profile, and the best total is normalised so the null detector scores 0 and a perfect one 100.

``--cv`` is the figure to judge a change by: leave-one-category-out cross-validation. For each
of the categories (the folders: artificialNoAnomaly, realTweets, ...) the threshold, and the value
of every ``--param`` given more than one value, are chosen on the *other* categories and the
category left out is scored at that choice; the folds' raw scores are summed as NAB sums files
and normalised as above. A gap between the in-sample and the CV figure measures how much of the
score was fitted to these files.

Run: ``python bench/nab.py [--data DIR] [--per-file] [--sanity] [--cv] [--param NAME=V1,V2]``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import sys
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
PROFILES = {
    "standard": {"tp": 1.0, "fp": 0.11, "fn": 1.0},
    "reward_low_FP_rate": {"tp": 1.0, "fp": 0.22, "fn": 1.0},
    "reward_low_FN_rate": {"tp": 1.0, "fp": 0.11, "fn": 2.0},
}
PROBATION_PERCENT = 0.15


@dataclass(frozen=True)
class DataFile:
    name: str
    timestamps: list[datetime]
    values: np.ndarray
    windows: list[tuple[int, int]]  # (first row, last row) of each labelled window


def data_dir(override: str | None = None) -> Path:
    """The NAB folder: --data, else $LAZARUS_DATA/nab, else ../shared/data/nab from the repo."""
    if override:
        return Path(override)
    base = os.environ.get("LAZARUS_DATA")
    return Path(base) / "nab" if base else REPO.parent / "shared" / "data" / "nab"


def load_corpus(root: Path) -> list[DataFile]:
    labels = json.loads((root / "labels" / "combined_windows.json").read_text())
    files = []
    for name in sorted(labels):
        lines = (root / "data" / name).read_text().splitlines()[1:]
        rows = [line.split(",", 1) for line in lines if line.strip()]
        stamps = [datetime.fromisoformat(r[0]) for r in rows]
        index = {t: i for i, t in enumerate(stamps)}
        windows = [
            (index[datetime.fromisoformat(a)], index[datetime.fromisoformat(b)])
            for a, b in labels[name]
        ]
        values = np.array([float(r[1]) for r in rows])
        files.append(DataFile(name, stamps, values, windows))
    return files


def scaled_sigmoid(position: np.ndarray) -> np.ndarray:
    """NAB's scaled sigmoid: 0.9866 at a window's left edge, 0 at its right, -1 from 3 past it."""
    position = np.asarray(position, dtype=float)
    out = 2.0 / (1.0 + np.exp(5.0 * position)) - 1.0
    return np.where(position >= 3.0, -1.0, out)


def probation_length(rows: int) -> float:
    return min(math.floor(PROBATION_PERCENT * rows), PROBATION_PERCENT * 5000)


def sweep_scores(rows: int, windows: list[tuple[int, int]], profile: dict) -> tuple:
    """Per row: weighted sweep score and window id (-1 outside windows), as nab/sweeper.py."""
    max_tp = float(scaled_sigmoid(-1.0))
    weighted = np.empty(rows)
    window_id = np.full(rows, -1)
    i = np.arange(rows)
    prev_right, prev_width, start = None, None, 0
    for w, (left, right) in enumerate([*windows, (rows, rows)]):
        gap = slice(start, left)  # rows after the previous window (or from the start) up to this
        if prev_right is None:
            weighted[gap] = -profile["fp"]
        else:
            pos = np.abs(prev_right - i[gap]) / float(prev_width - 1)
            weighted[gap] = scaled_sigmoid(pos) * profile["fp"]
        if left >= rows:
            break
        width = float(right - left + 1)
        inside = slice(left, right + 1)
        weighted[inside] = scaled_sigmoid(-(right - i[inside] + 1) / width) * profile["tp"] / max_tp
        window_id[inside] = w
        prev_right, prev_width, start = right, width, right + 1
    return weighted, window_id


def best_score(files: list[DataFile], scores: list[np.ndarray], profile: dict) -> tuple:
    """Sweep one threshold over every file at once; return (best raw score, threshold)."""
    all_scores, all_sweep, all_window = [], [], []
    offset = 0
    for f, s in zip(files, scores, strict=True):
        sweep, wid = sweep_scores(len(f.values), f.windows, profile)
        keep = np.arange(len(f.values)) >= probation_length(len(f.values))
        all_scores.append(np.asarray(s, dtype=float)[keep])
        all_sweep.append(sweep[keep])
        all_window.append(np.where(wid[keep] >= 0, wid[keep] + offset, -1))
        offset += len(f.windows)
    score = np.concatenate(all_scores)
    sweep = np.concatenate(all_sweep)
    window = np.concatenate(all_window)
    order = np.argsort(-score, kind="stable")
    score, sweep, window = score[order], sweep[order], window[order]
    windows_scored = np.unique(window[window >= 0])
    delta = np.where(window < 0, sweep, 0.0)
    best = dict.fromkeys(windows_scored.tolist(), -profile["fn"])
    for k in np.flatnonzero(window >= 0):
        w = int(window[k])
        if sweep[k] > best[w]:
            delta[k] = sweep[k] - best[w]
            best[w] = sweep[k]
    base = -profile["fn"] * len(windows_scored)
    totals = base + np.cumsum(delta)
    ends = np.flatnonzero(np.append(score[1:] != score[:-1], True))  # last row of each tie
    candidates = np.append(base, totals[ends])
    thresholds = np.append(np.inf, score[ends])
    k = int(np.argmax(candidates))
    return float(candidates[k]), float(thresholds[k])


def file_score(f: DataFile, scores: np.ndarray, profile: dict, threshold: float) -> float:
    """One file's raw contribution at a given threshold (for the --per-file listing)."""
    sweep, window = sweep_scores(len(f.values), f.windows, profile)
    hit = (np.asarray(scores) >= threshold) & (
        np.arange(len(f.values)) >= probation_length(len(f.values))
    )
    total = float(sweep[hit & (window < 0)].sum())
    for w in range(len(f.windows)):
        inside = hit & (window == w)
        total += float(sweep[inside].max()) if inside.any() else -profile["fn"]
    return total


def null_scores(files: list[DataFile]) -> list[np.ndarray]:
    return [np.zeros(len(f.values)) for f in files]


def perfect_scores(files: list[DataFile]) -> list[np.ndarray]:
    out = []
    for f in files:
        s = np.zeros(len(f.values))
        s[[left for left, _ in f.windows]] = 1.0
        out.append(s)
    return out


def normalised(files: list[DataFile], scores: list[np.ndarray]) -> dict[str, tuple]:
    """Per profile: (score 0..100, threshold)."""
    out = {}
    for name, profile in PROFILES.items():
        raw, threshold = best_score(files, scores, profile)
        null, _ = best_score(files, null_scores(files), profile)
        perfect, _ = best_score(files, perfect_scores(files), profile)
        out[name] = (100.0 * (raw - null) / (perfect - null), threshold)
    return out


def run_detector(files: list[DataFile], overrides: dict[str, float] | None = None) -> list:
    """The same code path as `lazarus detect`: one configuration for every file, no labels."""
    from lazarus.detect.csvfile import score_values
    from lazarus.detect.ensemble import EnsembleParams

    params = EnsembleParams(**(overrides or {}))
    return [score_values(f.values, f.timestamps, params) for f in files]


def category(f: DataFile) -> str:
    return f.name.split("/", 1)[0]


def raw_at(files: list[DataFile], scores: list, profile: dict, threshold: float) -> float:
    return sum(file_score(f, s, profile, threshold) for f, s in zip(files, scores, strict=True))


def cross_validated(
    files: list[DataFile], candidates: dict[str, list[np.ndarray]]
) -> dict[str, tuple[float, list[tuple[str, str, float]]]]:
    """Per profile: (normalised leave-one-category-out score, per fold (category, the
    candidate chosen on the other categories, threshold)). ``candidates`` maps a configuration's
    name to its scores per file."""
    folds = sorted({category(f) for f in files})
    out = {}
    for name, profile in PROFILES.items():
        total, chosen = 0.0, []
        for held in folds:
            train = [i for i, f in enumerate(files) if category(f) != held]
            test = [i for i, f in enumerate(files) if category(f) == held]
            best = None
            for label, scores in candidates.items():
                raw, threshold = best_score(
                    [files[i] for i in train], [scores[i] for i in train], profile
                )
                if best is None or raw > best[0]:
                    best = (raw, label, threshold)
            _, label, threshold = best
            s = candidates[label]
            total += raw_at([files[i] for i in test], [s[i] for i in test], profile, threshold)
            chosen.append((held, label, threshold))
        null = raw_at(files, null_scores(files), profile, 1.0)
        perfect = raw_at(files, perfect_scores(files), profile, 1.0)
        out[name] = (100.0 * (total - null) / (perfect - null), chosen)
    return out


def alarms_per_10k(scores: np.ndarray, threshold: float) -> float:
    return 10_000.0 * float((np.asarray(scores) >= threshold).sum()) / max(len(scores), 1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", help="NAB folder (data/ + labels/); default: see data_dir()")
    parser.add_argument("--per-file", action="store_true", help="also score each file alone")
    parser.add_argument(
        "--sanity", action="store_true", help="score the null and perfect detectors"
    )
    parser.add_argument(
        "--param",
        action="append",
        default=[],
        help="NAME=V[,V...] ensemble override; several values are chosen among by --cv",
    )
    parser.add_argument(
        "--cv", action="store_true", help="leave-one-category-out cross-validated score"
    )
    args = parser.parse_args(argv)
    sys.path.insert(0, str(REPO))
    files = load_corpus(data_dir(args.data))
    print(
        f"{len(files)} files, {sum(len(f.windows) for f in files)} windows, "
        f"{sum(len(f.values) for f in files)} rows"
    )
    if args.sanity:
        for label, scores in (("null", null_scores(files)), ("perfect", perfect_scores(files))):
            result = normalised(files, scores)
            print(label, " ".join(f"{p}={s:.2f}" for p, (s, _) in result.items()))
    started = time.perf_counter()
    grid = [
        [(k, _number(v)) for v in values.split(",")]
        for k, values in (p.split("=", 1) for p in args.param)
    ]
    candidates = {
        ",".join(f"{k}={v}" for k, v in combo) or "defaults": run_detector(files, dict(combo))
        for combo in itertools.product(*grid)
    }
    elapsed = time.perf_counter() - started
    print(f"detector time {elapsed:.2f} s ({len(candidates)} configuration(s))")
    for label, scores in candidates.items():
        result = normalised(files, scores)
        print(f"in-sample {label}")
        for profile, (score, threshold) in result.items():
            print(f"  {profile:20s} {score:6.2f}  (threshold {threshold:.4f})")
        _print_alarms(files, scores, result["standard"][1], args.per_file)
    if args.cv:
        print("leave-one-category-out (threshold and --param values chosen on the other folds)")
        for profile, (score, chosen) in cross_validated(files, candidates).items():
            picks = "; ".join(f"{c} {label} {t:.4f}" for c, label, t in chosen)
            print(f"  {profile:20s} {score:6.2f}  ({picks})")
    return 0


def _print_alarms(
    files: list[DataFile], scores: list[np.ndarray], threshold: float, per_file: bool
) -> None:
    """Alarms per 10,000 points of the no-anomaly files and the longest one at ``threshold``
    (and, with ``per_file``, each file's raw standard-profile contribution)."""
    print(f"  alarms per 10,000 points at the standard threshold ({threshold:.4f}):")
    longest = max(files, key=lambda f: len(f.values))
    for f, s in zip(files, scores, strict=True):
        if not f.windows or f is longest:
            print(f"    {alarms_per_10k(s, threshold):6.1f}  ({len(f.values)} rows)  {f.name}")
    if per_file:
        print("  raw standard-profile contribution per file at that threshold:")
        for f, s in zip(files, scores, strict=True):
            raw = file_score(f, s, PROFILES["standard"], threshold)
            print(f"    {raw:6.2f}  ({len(f.windows)} windows)  {f.name}")


def _number(text: str) -> float:
    value = float(text)
    return int(value) if value.is_integer() and "." not in text and "e" not in text else value


if __name__ == "__main__":
    sys.exit(main())
