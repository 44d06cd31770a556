"""Recurring kinds: clustering a history recovers the causes planted in it, and names them."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from lazarus.cli import main
from lazarus.diagnose.features import Example, load_history
from lazarus.diagnose.kinds import Kind, cluster
from tests.unit.test_diagnose_classifier import CAUSES, SHIPPED, examples, history


def adjusted_rand(truth: list[str], found: list[int]) -> float:
    """Agreement of two partitions beyond chance: 1 identical, about 0 unrelated."""
    _, a = np.unique(truth, return_inverse=True)
    _, b = np.unique(found, return_inverse=True)
    table = np.zeros((a.max() + 1, b.max() + 1))
    np.add.at(table, (a, b), 1)

    def pairs(x: np.ndarray) -> float:
        return float((x * (x - 1) / 2).sum())

    index, rows, cols = pairs(table), pairs(table.sum(1)), pairs(table.sum(0))
    expected = rows * cols / pairs(np.array([len(truth)]))
    return (index - expected) / ((rows + cols) / 2 - expected)


def labels(kinds: list[Kind], n: int) -> list[int]:
    out = [-1] * n
    for k, kind in enumerate(kinds):
        for i in kind.members:
            out[i] = k
    return out


def majority_map(planted: list[Example], kinds: list[Kind]) -> dict[str, tuple[int, float]]:
    """Each cause -> (the kind most of its incidents fell in, the share that did)."""
    found = labels(kinds, len(planted))
    out = {}
    for cause in CAUSES:
        where = Counter(k for k, e in zip(found, planted, strict=True) if e.cause == cause)
        kind, count = where.most_common(1)[0]
        out[cause] = (kind, count / sum(where.values()))
    return out


@pytest.mark.parametrize("per_cause, seed", [(12, 7), (20, 20), (40, 21)])
def test_clustering_recovers_the_planted_causes(per_cause: int, seed: int) -> None:
    planted = examples(history(per_cause, seed=seed))
    kinds = cluster(planted)
    found = labels(kinds, len(planted))
    assert -1 not in found
    assert adjusted_rand([e.cause for e in planted], found) >= 0.9
    mapping = majority_map(planted, kinds)
    assert len({kind for kind, _ in mapping.values()}) == len(CAUSES)  # one kind per cause
    assert min(share for _, share in mapping.values()) >= 0.9


def test_one_big_threshold_is_one_kind_and_zero_is_one_per_incident() -> None:
    planted = examples(history(4, seed=30))
    assert len(cluster(planted, threshold=2.0)) == 1
    assert len(cluster(planted, threshold=-1.0)) == len(planted)
    assert cluster([]) == []


def test_kinds_are_deterministic_and_named_by_distinctive_facts() -> None:
    planted = examples(history(12, seed=7))
    kinds = cluster(planted)
    assert kinds == cluster(planted)
    named = {planted[k.members[0]].cause: k for k in kinds}
    assert {"word:space", "word:device"} & set(named["disk_full"].features)
    assert "dep_anomaly" in named["dependency_down"].name
    assert "change=release" in named["bad_release"].features
    assert not any(f.startswith("symptom=") for k in kinds for f in k.features)


def test_cli_kinds_prints_kinds_with_counts_and_examples(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["diagnose", "kinds", str(SHIPPED), "--examples", "2"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"{SHIPPED}: 72 incidents in 6 kinds (cosine distance threshold 0.8)")
    assert out.count("incident(s): ") == 6
    assert out.count("\nkind 6: 12 incident(s): ") == 1
    assert "  causes: disk_full 12\n" in out
    assert "  diagnose_history.jsonl:1  " in out
    disk = out[out.index("word:device + word:left + word:space") :].split("\nkind")[0]
    shown = [line for line in disk.splitlines() if line.startswith("      ")]
    assert len(shown) == 2 and all("No space left on device" in line for line in shown)


def test_cli_kinds_takes_unlabelled_history_and_names_bad_lines(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    records = [{k: v for k, v in r.items() if k != "cause"} for r in history(3, seed=31)]
    path = tmp_path / "open.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    assert len(load_history(path, labelled=False)) == 18
    assert main(["diagnose", "kinds", str(path)]) == 0
    assert "causes:" not in capsys.readouterr().out
    path.write_text(path.read_text() + '{"symptom": 3}\n')
    assert main(["diagnose", "kinds", str(path)]) == 2
    assert f"error: {path}:19: symptom: " in capsys.readouterr().err
