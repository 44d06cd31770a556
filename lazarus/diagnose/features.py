"""An incident as a bag of named facts, for the classifier and the clustering of kinds.

A fact is binary and named so a person can read why a model decided: ``symptom=service_down``,
``tmpl:No space left on device``, ``word:space``, ``peer_failing``, ``change=release``,
``dep_anomaly=service_down``. Log lines pass through :mod:`lazarus.logmine.masking` first, so
numbers, ids, paths and addresses never make a fact unique to one incident. The service and
host names are no facts on purpose: a cause learnt on ``api`` should be recognised on ``web``.

Labelled history is a JSONL file, one past incident per line, as in
``tests/data/diagnose_history.jsonl``::

    {"symptom": "service_down", "service": "api", "host": "web-1",
     "lines": ["ERROR write /var/lib/api/seg-7.log failed: No space left on device"],
     "peers_failing": 0, "changes": ["release"], "dependency_anomalies": ["service_down"],
     "cause": "disk_full", "id": "INC-1042"}

``symptom``      the incident's symptom (required)
``service``, ``host``  where it happened (shown, not learnt from)
``lines``        log lines of the target around onset
``peers_failing`` how many other hosts of the service failed at the same time
``changes``      kinds of change made before onset (``release``, ``config``, ...)
``dependency_anomalies``  symptoms seen on services it depends on before onset
``cause``        the confirmed cause, as playbooks match ``cause=`` (required to train)
``id``           optional; defaults to ``FILE:LINE``

Unknown keys, wrong types and broken JSON are errors naming the file and line.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic_core import ErrorDetails

from lazarus.diagnose.evidence import Evidence, LogLine
from lazarus.diagnose.graph import DependencyGraph
from lazarus.errors import ConfigError
from lazarus.logmine.masking import WILDCARD, key_of
from lazarus.model import Incident
from lazarus.yamlfile import ConfigErrorGroup, field_path

MAX_LINES = 200  # newest lines read per incident: a storm of one message adds nothing past this
MAX_TEMPLATE = 120  # characters of a template kept in its feature name
_WORD = re.compile(r"[A-Za-z_]{3,}")


class Example(BaseModel):
    """One incident as the classifier sees it; ``cause`` is empty when not (yet) known."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    symptom: str = Field(min_length=1, max_length=64)
    service: str = ""
    host: str = ""
    lines: list[str] = []
    peers_failing: int = Field(0, ge=0)
    changes: list[str] = []
    dependency_anomalies: list[str] = []
    cause: str = Field("", max_length=64, pattern=r"^[A-Za-z0-9_.-]*$")
    id: str = ""

    @property
    def target(self) -> str:
        return f"{self.service}@{self.host}" if self.service else self.host


def load_history(path: str | Path, *, labelled: bool = True) -> list[Example]:
    """The incidents of a JSONL history; ConfigErrorGroup naming each bad line.

    ``labelled``: every line must carry a ``cause`` (training needs one; clustering does not).
    """
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"cannot read the file ({exc.strerror})", path=str(path)) from None
    examples: list[Example] = []
    errors: list[ConfigError] = []
    for number, raw in enumerate(text.splitlines(), 1):
        if not raw.strip():
            continue
        at = {"path": str(path), "line": number}
        try:
            example = Example.model_validate(json.loads(raw))
        except json.JSONDecodeError as exc:
            errors.append(ConfigError(f"not valid JSON: {exc.msg} (column {exc.colno})", **at))
        except ValidationError as exc:
            errors += [
                ConfigError(_message(e), field=field_path(e["loc"]), **at) for e in exc.errors()
            ]
        else:
            if labelled and not example.cause:
                errors.append(ConfigError("missing the confirmed 'cause'", field="cause", **at))
            else:
                examples.append(
                    example.model_copy(update={"id": example.id or f"{path.name}:{number}"})
                )
    if errors:
        raise ConfigErrorGroup(errors)
    if not examples:
        raise ConfigError("no incidents in the file", path=str(path))
    return examples


def _message(err: ErrorDetails) -> str:
    if err["type"] == "extra_forbidden":
        return f"unknown field {err['loc'][-1]!r}"
    if err["type"] == "missing":
        return f"missing required field {err['loc'][-1]!r}"
    if err["type"] == "model_type":
        return "each line must be a JSON object"
    return err["msg"]


def relevant(incident: Incident, line: LogLine) -> bool:
    """A line of the incident's host, or a mined template of its service."""
    return line.host == incident.host or (not line.host and line.service == incident.service)


def of_evidence(evidence: Evidence, graph: DependencyGraph) -> Example:
    """The example of a live incident: its lines, failing peers, changes, upstream anomalies."""
    incident = evidence.incident
    upstream = graph.upstream(incident.service)
    return Example(
        symptom=incident.symptom,
        service=incident.service,
        host=incident.host,
        lines=[line.line for line in evidence.lines if relevant(incident, line)],
        peers_failing=sum(p.failing for p in evidence.peers),
        changes=[c.kind for c in evidence.changes if c.service == incident.service],
        dependency_anomalies=[i.symptom for i in evidence.related if i.service in upstream],
        id=str(incident.id),
    )


def features(example: Example) -> frozenset[str]:
    """The named facts of one incident."""
    found = {f"symptom={example.symptom}"}
    for line in example.lines[-MAX_LINES:]:
        found |= line_facts(line)
    if not example.lines:
        found.add("no_logs")
    if example.peers_failing:
        found.add("peer_failing")
    for kind in example.changes:
        found.update(("change", f"change={kind}"))
    for symptom in example.dependency_anomalies:
        found.update(("dep_anomaly", f"dep_anomaly={symptom}"))
    return frozenset(found)


def line_facts(line: str) -> set[str]:
    """The facts one log line adds: its masked template and the words in it."""
    tokens = key_of(line)
    found = {f"tmpl:{' '.join(tokens)[:MAX_TEMPLATE]}"} if tokens else set()
    for token in tokens:
        found.update(f"word:{w.lower()}" for w in _WORD.findall(token.replace(WILDCARD, " ")))
    return found


@dataclass(frozen=True)
class Vocabulary:
    """Feature names in a fixed order: the columns of every matrix built from them."""

    names: tuple[str, ...]

    @classmethod
    def build(cls, bags: Iterable[frozenset[str]], *, min_count: int = 1) -> Vocabulary:
        """The facts seen in at least ``min_count`` bags, sorted (so the order is reproducible)."""
        counts = Counter(name for bag in bags for name in bag)
        return cls(tuple(sorted(n for n, c in counts.items() if c >= min_count)))

    @cached_property
    def index(self) -> dict[str, int]:
        return {name: i for i, name in enumerate(self.names)}

    def matrix(self, bags: Sequence[frozenset[str]]) -> np.ndarray:
        """``(len(bags), len(names))`` of 0/1; facts outside the vocabulary are dropped."""
        out = np.zeros((len(bags), len(self.names)))
        for row, bag in enumerate(bags):
            out[row, [self.index[n] for n in bag if n in self.index]] = 1.0
        return out
