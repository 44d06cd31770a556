"""Log lines as signals for detection and diagnosis.

:class:`LogSignals` feeds each service's messages through one shared :class:`TemplateMiner`
and keeps, per (service, template), counts in fixed time buckets. From those it offers:

- :meth:`LogSignals.rates`: a (series x time) numpy matrix of per-template rates, the shape the
  detectors take; a spiking error template is an anomaly like any other series;
- :meth:`LogSignals.take_new`: templates a service emitted for the first time after its
  warm-up, each a :class:`NewTemplate` signal;
- :meth:`LogSignals.top_templates`: the templates around an onset, new and spiking first, with
  error-level ones marked, for the diagnosis evidence bundle.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from lazarus.logmine.miner import Match, TemplateMiner

# Levels (from the header) and words (in the template) that make a template error-level.
_ERROR_LEVELS = frozenset({"ERROR", "ERR", "FATAL", "CRITICAL", "CRIT", "SEVERE", "ALERT", "EMERG"})
_ERROR_WORDS = re.compile(
    r"\b(?:error|errors|fail(?:ed|ure|s)?|fatal|panic|exception|traceback|denied|refused|"
    r"unreachable|timed? ?out|timeout|killed|oom|corrupt(?:ed|ion)?|abort(?:ed)?|"
    r"cannot|can't|unable|invalid|no space|too many)\b",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class NewTemplate:
    """A service logged a template it never logged before."""

    service: str
    template_id: str
    template: str
    at: float
    error: bool


@dataclass(frozen=True)
class TemplateActivity:
    """One template of one service in a window, against its own baseline."""

    service: str
    template_id: str
    template: str
    count: int
    baseline_per_bucket: float
    new: bool
    error: bool

    @property
    def spike(self) -> float:
        """How far above its baseline the template ran (count per bucket / baseline)."""
        return self.count / max(self.baseline_per_bucket, 0.5)


@dataclass(frozen=True)
class RateMatrix:
    """Counts per bucket: ``values[i, t]`` for series ``names[i]`` in bucket ``starts[t]``."""

    names: list[tuple[str, str]]
    starts: np.ndarray
    values: np.ndarray


class LogSignals:
    """Per-service template rates and first sightings, persisted with the miner."""

    def __init__(
        self,
        miner: TemplateMiner | None = None,
        *,
        bucket_s: float = 60.0,
        horizon: int = 1440,
        warmup_s: float = 300.0,
    ):
        self.miner = miner or TemplateMiner()
        self.bucket_s, self.horizon, self.warmup_s = bucket_s, horizon, warmup_s
        self._counts: dict[tuple[str, str], dict[int, int]] = {}
        self._first: dict[str, float] = {}
        self._error_ids: set[str] = set()
        self._new: list[NewTemplate] = []

    def ingest(self, service: str, message: str, at: float, level: str = "") -> Match:
        """Mine one message of ``service`` logged at ``at`` (epoch seconds)."""
        match = self.miner.add(message, at)
        tid = match.template_id
        if level and level.upper() in _ERROR_LEVELS:
            self._error_ids.add(tid)
        bucket = int(at // self.bucket_s)
        counts = self._counts.get((service, tid))
        if counts is None:
            if _ERROR_WORDS.search(match.template):
                self._error_ids.add(tid)
            counts = self._counts[(service, tid)] = {}
            first = self._first.setdefault(service, at)
            if at - first >= self.warmup_s and not self._known(service, tid):
                self._new.append(NewTemplate(service, tid, match.template, at, self.is_error(tid)))
        counts[bucket] = counts.get(bucket, 0) + 1
        if len(counts) > self.horizon:
            for old in sorted(counts)[: len(counts) - self.horizon]:
                del counts[old]
        return match

    def is_error(self, template_id: str) -> bool:
        """Whether a template was logged at an error level or reads like an error."""
        resolve = self.miner.resolve
        return resolve(template_id) in {resolve(t) for t in self._error_ids}

    def take_new(self) -> list[NewTemplate]:
        """The new-template signals since the last call."""
        out, self._new = self._new, []
        return out

    def rates(self, end: float, length: int) -> RateMatrix:
        """The last ``length`` buckets up to ``end`` for every (service, template) series.

        Templates merged since their lines were counted are summed under the surviving id.
        """
        last = int(end // self.bucket_s)
        first = last - length + 1
        rows: dict[tuple[str, str], np.ndarray] = {}
        for (service, tid), counts in self._counts.items():
            row = rows.setdefault((service, self.miner.resolve(tid)), np.zeros(length))
            for bucket, n in counts.items():
                if first <= bucket <= last:
                    row[bucket - first] += n
        names = sorted(rows)
        values = np.array([rows[n] for n in names]) if names else np.zeros((0, length))
        starts = (np.arange(first, last + 1) * self.bucket_s).astype(float)
        return RateMatrix(names, starts, values)

    def top_templates(
        self, service: str, start: float, end: float, limit: int = 10
    ) -> list[TemplateActivity]:
        """Templates of ``service`` in ``[start, end]``: new first, then by spike over baseline."""
        lo, hi = int(start // self.bucket_s), int(end // self.bucket_s)
        window = max(hi - lo + 1, 1)
        merged: dict[str, tuple[int, int, int]] = {}
        for (svc, tid), counts in self._counts.items():
            if svc != service:
                continue
            live = self.miner.resolve(tid)
            inside = sum(n for b, n in counts.items() if lo <= b <= hi)
            before = sum(n for b, n in counts.items() if b < lo)
            since = min(counts)
            c_in, c_before, c_first = merged.get(live, (0, 0, since))
            merged[live] = (c_in + inside, c_before + before, min(c_first, since))
        out = []
        for tid, (inside, before, since) in merged.items():
            if inside == 0:
                continue
            history = max(lo - since, 0)
            baseline = before / history if history else 0.0
            activity = TemplateActivity(
                service,
                tid,
                self.miner.template(tid),
                inside,
                baseline * window,
                new=before == 0,
                error=self.is_error(tid),
            )
            out.append(activity)
        out.sort(key=lambda a: (not a.new, not a.error, -a.spike, -a.count))
        return out[:limit]

    def _known(self, service: str, template_id: str) -> bool:
        live = self.miner.resolve(template_id)
        return any(
            svc == service and tid != template_id and self.miner.resolve(tid) == live
            for svc, tid in self._counts
        )

    # -- persistence -----------------------------------------------------------------------

    def to_dict(self) -> dict:
        return {
            "version": 1,
            "bucket_s": self.bucket_s,
            "horizon": self.horizon,
            "warmup_s": self.warmup_s,
            "miner": self.miner.to_dict(),
            "counts": [[s, t, list(c.items())] for (s, t), c in self._counts.items()],
            "first": self._first,
            "error_ids": sorted(self._error_ids),
        }

    @classmethod
    def from_dict(cls, data: dict) -> LogSignals:
        signals = cls(
            TemplateMiner.from_dict(data.get("miner", {})),
            bucket_s=data.get("bucket_s", 60.0),
            horizon=data.get("horizon", 1440),
            warmup_s=data.get("warmup_s", 300.0),
        )
        for service, tid, counts in data.get("counts", []):
            signals._counts[(service, tid)] = {int(b): int(n) for b, n in counts}
        signals._first = {k: float(v) for k, v in data.get("first", {}).items()}
        signals._error_ids = set(data.get("error_ids", []))
        return signals
