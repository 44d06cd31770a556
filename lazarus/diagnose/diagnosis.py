"""One incident's diagnosis: gather the evidence, rank the causes, say it in words.

``text`` is the one paragraph a notification carries (``render(..., diagnosis=...)``);
``markdown`` is the full report for a flow-run artifact, every cause with its evidence.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from lazarus.config import Config
from lazarus.diagnose.classifier import Classifier
from lazarus.diagnose.evidence import Change, Evidence, gather
from lazarus.diagnose.graph import DependencyGraph
from lazarus.diagnose.rank import Cause, rank
from lazarus.diagnose.signatures import Signature, load_signatures
from lazarus.errors import ConfigError
from lazarus.logmine.signals import TemplateActivity
from lazarus.model import Incident
from lazarus.store import Store

ALSO = 2  # runner-up causes named in the paragraph


@dataclass(frozen=True)
class Diagnosis:
    incident: Incident
    causes: list[Cause]
    evidence: Evidence

    @property
    def top(self) -> Cause | None:
        return self.causes[0] if self.causes else None

    @property
    def text(self) -> str:
        """One paragraph: the likeliest cause with its evidence, the runners-up, what was read."""
        top = self.top
        if top is None:
            return "No cause could be ranked."
        ev = self.evidence
        also = ", ".join(f"{c.label} {c.confidence:.2f}" for c in self.causes[1 : 1 + ALSO])
        parts = [
            f"Probable cause: {top.label}, confidence {top.confidence:.2f}:"
            f" {'; '.join(top.evidence)}."
        ]
        if also:
            parts.append(f"Also possible: {also}.")
        parts.append(
            f"Read {len(ev.related)} other incident(s) from {ev.before_s / 60:g} min before to"
            f" {ev.after_s / 60:g} min after onset, {len(ev.peers)} peer host(s),"
            f" {len(ev.lines)} log line(s), {len(ev.changes)} change(s)."
        )
        return " ".join(parts)

    def markdown(self) -> str:
        """The report for an artifact: ranked causes, their evidence, the bundle read."""
        incident, ev = self.incident, self.evidence
        out = [
            f"# Diagnosis of incident #{incident.id}: {incident.fingerprint}",
            "",
            self.text,
            "",
            "| # | cause | target | confidence |",
            "|---|---|---|---|",
            *(
                f"| {n} | `{c.name}` | {c.target or '-'} | {c.confidence:.2f} |"
                for n, c in enumerate(self.causes, 1)
            ),
        ]
        for n, cause in enumerate(self.causes, 1):
            out += ["", f"## {n}. {cause.label}", "", *(f"- {_md(e)}" for e in cause.evidence)]
        out += ["", "## Evidence read", ""]
        out += [f"- incident {_md(i.fingerprint)} #{i.id} ({i.state})" for i in ev.related]
        out += [f"- peer {p.host}: {', '.join(p.symptoms) or 'healthy'}" for p in ev.peers]
        out += [f"- change: {c.kind} {_md(c.description)}" for c in ev.changes]
        out.append(f"- {len(ev.lines)} log line(s)")
        return "\n".join(out) + "\n"


def diagnose(
    store: Store,
    config: Config,
    incident: Incident,
    *,
    lines: Iterable[tuple[str, str, str] | TemplateActivity] = (),
    changes: Iterable[Change] = (),
    signatures: Sequence[Signature] | None = None,
    model: Classifier | None = None,
) -> Diagnosis:
    """Rank the probable causes of ``incident`` (signatures default to the shipped set; a
    ``model``, e.g. :func:`configured_model`, adds the learnt causes)."""
    evidence = gather(store, config, incident, lines=lines, changes=changes)
    signatures = load_signatures() if signatures is None else signatures
    causes = rank(evidence, DependencyGraph.of(config), signatures, model)
    return Diagnosis(incident, causes, evidence)


def configured_model(config: Config) -> Classifier | None:
    """The classifier the config names in ``diagnose.model``, if any; ConfigError naming the
    field when that file is missing or no model."""
    if not config.diagnose.model:
        return None
    path = config.path(config.diagnose.model)
    try:
        return Classifier.load(path)
    except ConfigError as error:
        raise ConfigError(error.reason, path=str(path), field="diagnose.model") from None


def _md(text: str) -> str:
    """Text safe in a markdown list item and table: no pipes, no line breaks."""
    return " ".join(text.replace("|", "\\|").split())
