"""Statistical detection in the watch: each cycle's samples become points of per-series state.

A series is a sample's name plus its labels (its ``key``: ``load1{host="web-1"}``). Series are
scored in *cohorts*: the series that first report in the same cycle with the same parameters
share one ``Ensemble`` (and the extra detectors their config adds, ``extras``), a column each,
so a cycle costs one vectorised update per cohort (in a steady fleet: one per parameter set),
not one per series. The store keeps a row per series (cohort, column, time of its last point,
silent cycles) in ``detector_series`` and each cohort's state in ``detector_cohorts``; a cycle
reads, updates and writes both in one transaction, so separate (even concurrent) watch runs
carry on where the last one stopped.

Documented behaviour (a cycle never fails on its data):

- A value that is not a finite number (NaN, +-Inf, not a number at all) is a gap (see
  ``clean``): it scores 0, teaches nothing and counts as a silent cycle. A cohort member
  without a point in a cycle gets a gap too; one with fewer points than others, gaps after them.
- A point not newer than the series' last point (the same scrape read twice, a duplicate in one
  cycle, a clock stepping back) is dropped; of equal timestamps in one cycle the last wins. The
  points of a cycle are taken in time order and a gap in time is not filled: the detectors see
  points, not clocks.
- Absence: a known series without a new real value, in a cycle in which its name reported some
  other series, counts one silent cycle; from ``absent_after`` in a row on it is reported as
  ``<name>_absent`` until it reports again. A name with no sample at all counts nothing: the
  source failed (collect logs it) or the query filters by design (``rate(x[1m]) > 0``).
  After ``FORGET`` silent cycles a series is dropped, and a cohort with no series left too.
- Peers: the newest point of each series is also compared with the same name on its peers
  (``peers_cycle``); one unlike them for ``peer.for`` cycles is ``<name>_peer_outlier``, once,
  unless its own ensemble labelled it while it was unlike them (the same episode, said already).
- A series whose cohort state cannot be read back, or whose parameters the config has since
  changed, starts afresh in a new cohort (its old column only gets gaps from then on).
"""

from __future__ import annotations

import json
import logging
import math
import sqlite3
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from fnmatch import fnmatchcase

import numpy as np

from lazarus.config import AnomalySettings, Config, PeerSettings
from lazarus.detect import state
from lazarus.detect.ensemble import params_for
from lazarus.detect.explain import Before, Why
from lazarus.detect.extras import EXTRAS, Cohort, CohortSpec
from lazarus.detect.peers_cycle import Latest, Outlier, peer_outliers
from lazarus.detect.rings import stored_rings
from lazarus.model import Anomaly, Sample
from lazarus.store import Store

log = logging.getLogger(__name__)

FORGET = 1000  # silent cycles before a series is dropped (churned pods, removed hosts)


def series_key(series: str, labels: Iterable[tuple[str, str]]) -> str:
    """``name{a="1",b="2"}`` with labels sorted, as Prometheus writes a series."""
    inner = ",".join(f"{k}={json.dumps(v)}" for k, v in sorted(labels))
    return f"{series}{{{inner}}}" if inner else series


@dataclass
class SeriesRow:
    """One series as the store keeps it."""

    series: str
    labels: dict[str, str]
    cohort: int = 0
    col: int = -1
    last_at: float = -math.inf
    silent: int = 0


class SeriesTable:
    """The detector tables of the Lazarus store, used inside one of its transactions."""

    def __init__(self, db: sqlite3.Connection):
        self.db = db
        (self._last_id,) = db.execute(
            "SELECT COALESCE(MAX(id), 0) FROM detector_cohorts"
        ).fetchone()

    def rows(self) -> dict[str, SeriesRow]:
        found = self.db.execute(
            "SELECT key, series, labels, cohort, col, last_at, silent FROM detector_series"
        )
        return {r[0]: SeriesRow(r[1], json.loads(r[2]), *r[3:]) for r in found}

    def cohorts(self, ids: Iterable[int]) -> dict[int, Cohort | None]:
        """The stored cohorts; None for one that cannot be read back."""
        out: dict[int, Cohort | None] = {}
        for cohort in ids:
            got = self.db.execute("SELECT state FROM detector_cohorts WHERE id=?", (cohort,))
            row = got.fetchone()
            out[cohort] = _restore(cohort, row[0]) if row else None
        return out

    def new_cohort(self) -> int:
        self._last_id += 1
        return self._last_id

    def save(
        self, rows: dict[str, SeriesRow], cohorts: dict[int, Cohort], forget: Iterable[str]
    ) -> None:
        self.db.executemany(
            "INSERT OR REPLACE INTO detector_series VALUES (?,?,?,?,?,?,?)",
            [
                (k, r.series, json.dumps(r.labels), r.cohort, r.col, r.last_at, r.silent)
                for k, r in rows.items()
            ],
        )
        self.db.executemany(
            "INSERT OR REPLACE INTO detector_cohorts VALUES (?,?)",
            [(cohort, state.dumps(e)) for cohort, e in cohorts.items()],
        )
        self.db.executemany("DELETE FROM detector_series WHERE key=?", [(k,) for k in forget])
        for table, column in (("detector_cohorts", "id"), ("detector_ring_slots", "cohort")):
            self.db.execute(
                f"DELETE FROM {table} WHERE {column} NOT IN (SELECT cohort FROM detector_series)"
            )


def known_series(store: Store) -> dict[str, SeriesRow]:
    """Every series the detectors keep state for (``lazarus`` commands, tests)."""
    with store.transaction() as db:
        return SeriesTable(db).rows()


def detect_series(store: Store, config: Config, samples: Iterable[Sample]) -> list[Anomaly]:
    """One cycle of statistical detection: update every reporting series, report the unusual
    points (``<name>_anomaly``), the series unlike their peers (``<name>_peer_outlier``) and
    the series that went silent (``<name>_absent``)."""
    points = _group(samples)
    if not points:
        return []
    with store.transaction() as db:
        return _Cycle(SeriesTable(db), config).run(points)


@dataclass
class _Points:
    series: str
    labels: dict[str, str]
    values: dict[float, float] = field(default_factory=dict)  # at -> value; a duplicate: last


class _Cycle:
    def __init__(self, table: SeriesTable, config: Config):
        self.table, self.config = table, config
        self.addresses = {h.address: h.name for h in config.inventory.hosts}
        self.anomalies: list[Anomaly] = []
        self.said: set[str] = set()  # keys the ensemble or an extra labelled this cycle

    def run(self, points: dict[str, _Points]) -> list[Anomaly]:
        rows = self.table.rows()
        fresh: dict[str, list[tuple[float, float]]] = {}
        for key, got in points.items():
            row = rows.setdefault(key, SeriesRow(got.series, got.labels))
            fresh[key] = sorted((at, v) for at, v in got.values.items() if at > row.last_at)
            if fresh[key]:
                row.last_at = fresh[key][-1][0]
            real = any(math.isfinite(v) for _, v in fresh[key])
            row.silent = 0 if real else row.silent + 1
        fresh = {k: f for k, f in fresh.items() if f}
        cohorts = self._cohorts(rows, fresh)
        members: dict[int, dict[int, str]] = defaultdict(dict)
        for key in fresh:
            members[rows[key].cohort][rows[key].col] = key
        for cohort_id, cohort in cohorts.items():
            self._score(cohort_id, cohort, members[cohort_id], fresh, rows)
        latest = {k: Latest(rows[k].series, rows[k].labels, *f[-1]) for k, f in fresh.items()}
        for outlier in peer_outliers(self.table.db, latest, self._peer_settings, self.said):
            self.anomalies.append(self._peer(outlier, rows[outlier.key]))
        reporting = {p.series for p in points.values()}
        for key, row in rows.items():
            if key not in points and row.series in reporting:
                row.silent += 1
        changed = {k: r for k, r in rows.items() if k in points or r.series in reporting}
        forget = {k for k, r in changed.items() if r.silent >= FORGET}
        now = max(at for p in points.values() for at in p.values)
        for key, row in changed.items():
            if key not in forget and row.silent >= self._settings(row.series).absent_after:
                self.anomalies.append(self._absent(key, row, now))
        self.table.save({k: r for k, r in changed.items() if k not in forget}, cohorts, forget)
        return self.anomalies

    def _cohorts(
        self, rows: dict[str, SeriesRow], fresh: dict[str, list[tuple[float, float]]]
    ) -> dict[int, Cohort]:
        """The cohorts of the series with new points; new cohorts for those without one."""
        by_name = {name: self._spec(name) for name in {rows[k].series for k in fresh}}
        specs = {k: by_name[rows[k].series] for k in fresh}
        loaded = self.table.cohorts({rows[k].cohort for k in fresh})
        homeless: dict[CohortSpec, list[str]] = defaultdict(list)
        for key in fresh:
            if not _fits(loaded.get(rows[key].cohort), specs[key], rows[key].col):
                homeless[specs[key]].append(key)
        cohorts = {c: e for c, e in loaded.items() if e is not None}
        for spec, keys in homeless.items():
            cohort_id = self.table.new_cohort()
            cohorts[cohort_id] = Cohort(len(keys), spec)
            for col, key in enumerate(keys):
                rows[key].cohort, rows[key].col = cohort_id, col
        return cohorts

    def _score(
        self,
        cohort_id: int,
        cohort: Cohort,
        members: dict[int, str],
        fresh: dict[str, list[tuple[float, float]]],
        rows: dict[str, SeriesRow],
    ) -> None:
        """One update of a cohort with its members' new points (gaps for the others)."""
        width = max((len(fresh[k]) for k in members.values()), default=0)
        if not width:
            return
        block = np.full((cohort.n_series, width), np.nan)
        for col, key in members.items():
            block[col, : len(fresh[key])] = [v for _, v in fresh[key]]
        # The rings of past rows live in the store (rings.py), not in the pickled state.
        with stored_rings(self.table.db, cohort_id, cohort.ringed(), cohort.n_series, width):
            before = Before.of(cohort.ensemble)
            scores, extra = cohort.update(block)
        for col, key in members.items():
            labelled = scores.label[col, : len(fresh[key])].nonzero()[0]
            if len(labelled):
                at, value = fresh[key][labelled[0]]
                score = float(scores.score[col, labelled[0]])
                why = before.why(col, value, self._season_text(rows[key].series))
                if points := scores.lasting_over(col, labelled[0]):
                    why = why.lasting(points)
                self.said.add(key)
                self.anomalies.append(self._unusual(key, rows[key], at, value, score, why))
            for name, labels in extra.items():
                first = labels[col, : len(fresh[key])].nonzero()[0]
                if len(first):
                    self.said.add(key)
                    self.anomalies.append(self._extra(name, key, rows[key], *fresh[key][first[0]]))

    def _spec(self, series: str) -> CohortSpec:
        params = params_for(series, self.config.detectors.anomaly, self.config.watch.interval)
        return CohortSpec(params, tuple(self._settings(series).also))

    def _peer_settings(self, series: str) -> PeerSettings:
        return self._settings(series).peer

    def _settings(self, series: str) -> AnomalySettings:
        return next(
            (s for s in self.config.detectors.anomaly if fnmatchcase(series, s.series)),
            AnomalySettings(),
        )

    def _season_text(self, series: str) -> str:
        return duration_text(self._settings(series).season or 0.0)

    def _unusual(
        self, key: str, row: SeriesRow, at: float, value: float, score: float, why: Why
    ) -> Anomaly:
        summary = f"{key} {why.text(value)}; score {score:.2f}"
        return self._anomaly(row, f"{row.series}_anomaly", at, summary)

    def _extra(self, name: str, key: str, row: SeriesRow, at: float, value: float) -> Anomaly:
        summary = f"{key} = {value:g}: {EXTRAS[name].meaning}"
        return self._anomaly(row, f"{row.series}_{name}", at, summary)

    def _peer(self, outlier: Outlier, row: SeriesRow) -> Anomaly:
        host = target_of(row.labels, self.addresses)[0] or outlier.key
        summary = (
            f"{row.series} on {host} is {outlier.value:g} while its {outlier.peers} peers' "
            f"median is {outlier.median:g}"
        )
        return self._anomaly(row, f"{row.series}_peer_outlier", outlier.at, summary)

    def _absent(self, key: str, row: SeriesRow, now: float) -> Anomaly:
        summary = f"{key} has reported no value for {row.silent} cycles"
        return self._anomaly(row, f"{row.series}_absent", now, summary)

    def _anomaly(self, row: SeriesRow, symptom: str, at: float, summary: str) -> Anomaly:
        host, service = target_of(row.labels, self.addresses)
        labels = {**row.labels, "series": series_key(row.series, row.labels.items())}
        return Anomaly(host, service, symptom, "warning", summary, at, labels)


def _fits(cohort: Cohort | None, spec: CohortSpec, col: int) -> bool:
    """Whether a series may go on in this cohort's column ``col``."""
    return cohort is not None and cohort.spec == spec and 0 <= col < cohort.n_series


def _restore(cohort_id: int, blob: bytes) -> Cohort | None:
    try:
        cohort = state.loads(blob)
    except Exception as exc:  # any unreadable state: start afresh, never fail the cycle
        log.warning("detector cohort %d unreadable (%s); its series start afresh", cohort_id, exc)
        return None
    return cohort if isinstance(cohort, Cohort) else None


def _group(samples: Iterable[Sample]) -> dict[str, _Points]:
    """Points per series key; a value that is not a number becomes NaN (a gap), a sample
    without a usable time is dropped."""
    points: dict[str, _Points] = {}
    for sample in samples:
        at = _number(sample.at)
        if not math.isfinite(at):
            continue  # no time, no place among the points
        key = series_key(sample.series, sample.labels)
        got = points.setdefault(key, _Points(sample.series, dict(sample.labels)))
        got.values[at] = _number(sample.value)
    return points


def _number(value: object) -> float:
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return math.nan


def duration_text(seconds: float) -> str:
    """``1 day``, ``7 days``, ``6 hours``, ``90 minutes``: a period as a person says it."""
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size and seconds % size == 0:
            n = int(seconds // size)
            return f"{n} {unit}" + ("s" if n != 1 else "")
    return f"{seconds:g} s"


def target_of(labels: dict[str, str], addresses: dict[str, str]) -> tuple[str, str]:
    """(host, service) from a sample's labels: ``host``, else ``instance`` without its port
    (an inventory address becomes the host's name); ``service`` as given."""
    host = labels.get("host", "")
    if not host:
        address, _, port = labels.get("instance", "").rpartition(":")
        host = address.strip("[]") if port.isdigit() else labels.get("instance", "")
        host = addresses.get(host, host)
    return host, labels.get("service", "")
