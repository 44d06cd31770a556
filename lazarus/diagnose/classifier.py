"""A cause classifier learnt from labelled incident history: multinomial logistic regression.

Why this model: a few hundred labelled incidents and a few thousand sparse binary facts
(:mod:`.features`) is where a linear softmax model is hard to beat, and its weights say which
facts spoke for a cause, so every prediction carries readable evidence.

Training minimises the mean cross-entropy plus ``l2 / 2 * |W|^2`` (the bias unpenalised) by
Nesterov-accelerated full-batch gradient descent from zero weights with the step ``1 / L``
(``L`` bounds the Hessian), so the same history always gives the same model. Rows are scaled
to unit length first: a long log dump speaks no louder than a short one.

A model saves to ``.npz`` (vocabulary, classes, weights, counts) and loads with
``allow_pickle=False``: a model file can not run code.

In :func:`lazarus.diagnose.rank`, the top causes become supports with ``p`` = the probability,
capped at :data:`CAP` so a matching signature (0.85+) or the dependency graph (0.8+) still
outranks a classifier that merely recognises the shape of an incident.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np

from lazarus.diagnose.features import Example, Vocabulary, features
from lazarus.errors import ConfigError, LazarusError

L2 = 0.003
ITERATIONS = 500
MIN_PER_CLASS = 2  # a cause seen once can be neither learnt nor checked
FOLDS = 5
CAP = 0.7  # highest p a classifier support may carry in rank()
MIN_P = 0.2  # causes less probable than this are not offered to rank()
TOP = 3  # causes offered to rank()
EXPLAIN = 4  # features quoted per cause


class TrainingError(LazarusError):
    """The history can not train a model (too few causes or examples); the message says why."""


class Score(NamedTuple):
    """Held-out accuracy: ``correct`` of ``total`` over ``folds`` stratified folds."""

    correct: int
    total: int
    folds: int

    @property
    def accuracy(self) -> float:
        return self.correct / self.total


def _design(vocabulary: Vocabulary, examples: Sequence[Example]) -> np.ndarray:
    """Unit-length rows of facts plus a constant bias column."""
    x = vocabulary.matrix([features(e) for e in examples])
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    x = x / np.where(norms > 0, norms, 1.0)
    return np.hstack([x, np.ones((len(examples), 1))])


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def _fit(x: np.ndarray, y: np.ndarray, classes: int, l2: float, iterations: int) -> np.ndarray:
    """Weights ``(features + 1, classes)`` minimising the penalised cross-entropy."""
    n = len(x)
    onehot = np.eye(classes)[y]
    penalty = np.ones((x.shape[1], 1))
    penalty[-1] = 0.0  # the bias
    # Hessian of the mean cross-entropy <= 0.5 * X'X / n <= 0.5 * |X|_F^2 / n (rows: norm <= 2).
    step = 1.0 / (0.5 * float((x * x).sum()) / n + l2)
    w = np.zeros((x.shape[1], classes))
    previous = w
    for k in range(1, iterations + 1):
        look = w + (k - 1) / (k + 2) * (w - previous)
        grad = x.T @ (_softmax(x @ look) - onehot) / n + l2 * penalty * look
        previous, w = w, look - step * grad
    return w


def _check(examples: Sequence[Example]) -> Counter[str]:
    counts = Counter(e.cause for e in examples)
    if "" in counts:
        raise TrainingError(f"{counts['']} example(s) have no cause: label them or leave them out")
    if len(counts) < 2:
        found = ", ".join(counts) or "none"
        raise TrainingError(f"need at least 2 different causes to learn from, found: {found}")
    few = sorted(c for c, n in counts.items() if n < MIN_PER_CLASS)
    if few:
        listed = ", ".join(f"{c} ({counts[c]})" for c in few)
        raise TrainingError(
            f"every cause needs at least {MIN_PER_CLASS} examples; too few for: {listed}"
            " (label more incidents of these causes or leave them out)"
        )
    return counts


@dataclass(frozen=True)
class Classifier:
    """``weights[i, c]``: how much fact ``vocabulary.names[i]`` speaks for ``classes[c]``."""

    vocabulary: Vocabulary
    classes: tuple[str, ...]
    weights: np.ndarray  # (len(vocabulary.names) + 1, len(classes)); the last row is the bias
    counts: tuple[int, ...]  # training examples per class

    @property
    def trained_on(self) -> int:
        return sum(self.counts)

    @classmethod
    def train(
        cls, examples: Sequence[Example], *, l2: float = L2, iterations: int = ITERATIONS
    ) -> Classifier:
        """Learn from labelled examples; TrainingError when they can not support a model."""
        return cls._learn(examples, _check(examples), l2, iterations)

    @classmethod
    def _learn(
        cls, examples: Sequence[Example], counts: Counter[str], l2: float, iterations: int
    ) -> Classifier:
        classes = tuple(sorted(counts))
        vocabulary = Vocabulary.build(features(e) for e in examples)
        y = np.array([classes.index(e.cause) for e in examples])
        weights = _fit(_design(vocabulary, examples), y, len(classes), l2, iterations)
        return cls(vocabulary, classes, weights, tuple(counts[c] for c in classes))

    def probabilities(self, examples: Sequence[Example]) -> np.ndarray:
        """``(len(examples), len(classes))``: each row sums to 1."""
        return _softmax(_design(self.vocabulary, examples) @ self.weights)

    def predict(self, example: Example) -> list[tuple[str, float]]:
        """Every class with its probability, most probable first (ties by name)."""
        p = self.probabilities([example])[0]
        return sorted(zip(self.classes, p.tolist(), strict=True), key=lambda t: (-t[1], t[0]))

    def explain(self, example: Example, cause: str) -> list[str]:
        """The facts of ``example`` that speak most for ``cause`` over the other classes."""
        c = self.classes.index(cause)
        w = self.weights[:-1]
        lift = w[:, c] - np.delete(w, c, axis=1).mean(axis=1)
        index = self.vocabulary.index
        present = [(float(lift[index[f]]), f) for f in features(example) if f in index]
        return [f for score, f in sorted(present, key=lambda t: (-t[0], t[1])) if score > 0][
            :EXPLAIN
        ]

    def supports(self, example: Example) -> list[tuple[str, float, str]]:
        """``(cause, p, evidence text)`` of the top causes, ``p`` capped at :data:`CAP`."""
        out = []
        for cause, p in self.predict(example)[:TOP]:
            if p < MIN_P:
                break
            facts = ", ".join(self.explain(example, cause)) or "none stand out"
            text = (
                f"classifier (trained on {self.trained_on} incidents): p={p:.2f}; features: {facts}"
            )
            out.append((cause, min(p, CAP), text))
        return out

    def save(self, path: str | Path) -> None:
        """Write the model as ``.npz`` (no pickled objects)."""
        with Path(path).open("wb") as f:
            np.savez(
                f,
                vocabulary=np.array(self.vocabulary.names, dtype=str),
                classes=np.array(self.classes, dtype=str),
                weights=self.weights,
                counts=np.array(self.counts, dtype=np.int64),
            )

    @classmethod
    def load(cls, path: str | Path) -> Classifier:
        """A saved model; ConfigError naming the file when it is missing or not a model."""
        try:
            with np.load(path, allow_pickle=False) as data:
                vocabulary = tuple(str(v) for v in data["vocabulary"])
                classes = tuple(str(c) for c in data["classes"])
                weights = np.array(data["weights"], dtype=float)
                counts = tuple(int(n) for n in data["counts"])
        except OSError as exc:
            raise ConfigError(f"cannot read the model ({exc})", path=str(path)) from None
        except (KeyError, ValueError) as exc:
            raise ConfigError(f"not a Lazarus classifier model ({exc})", path=str(path)) from None
        if weights.shape != (len(vocabulary) + 1, len(classes)) or len(counts) != len(classes):
            raise ConfigError(
                f"not a Lazarus classifier model (weights {weights.shape} do not fit"
                f" {len(vocabulary)} features and {len(classes)} classes)",
                path=str(path),
            )
        return cls(Vocabulary(vocabulary), classes, weights, counts)


def cross_validate(
    examples: Sequence[Example],
    *,
    folds: int = FOLDS,
    l2: float = L2,
    iterations: int = ITERATIONS,
) -> Score:
    """Held-out accuracy over stratified folds: the i-th example of each cause goes to fold i % k.

    ``k`` is at most the smallest cause's count, so every fold trains on every cause.
    """
    counts = _check(examples)
    k = max(2, min(folds, min(counts.values())))
    seen: Counter[str] = Counter()
    fold = []
    for e in examples:
        fold.append(seen[e.cause] % k)
        seen[e.cause] += 1
    correct = 0
    for f in range(k):
        kept = [e for e, g in zip(examples, fold, strict=True) if g != f]
        held = [e for e, g in zip(examples, fold, strict=True) if g == f]
        model = Classifier._learn(kept, Counter(e.cause for e in kept), l2, iterations)
        best = model.probabilities(held).argmax(axis=1)
        correct += sum(model.classes[i] == e.cause for i, e in zip(best, held, strict=True))
    return Score(correct, len(examples), k)
