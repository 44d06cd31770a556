"""Diagnosis: rank the probable causes of an incident, each with a confidence and its evidence.

    diagnosis = diagnose(store, config, incident, lines=[("web-1", "api", "... No space left ...")])
    diagnosis.top            # Cause(name="disk_full", confidence=0.9, evidence=[...], target=...)
    diagnosis.text           # one paragraph for the notification
    diagnosis.markdown()     # the report for an artifact

The evidence bundle (:mod:`.evidence`), the dependency graph (:mod:`.graph`), the log
signatures (:mod:`.signatures`, ``signatures.yaml``) and the scoring (:mod:`.rank`) are
separate so each can be tested, and replaced, on its own. Learnt from labelled history
(:mod:`.features`): a cause classifier (:mod:`.classifier`) whose top causes ``rank`` adds as
supports, and the recurring kinds of incident (:mod:`.kinds`).
"""

from __future__ import annotations

from lazarus.diagnose.classifier import Classifier, TrainingError, cross_validate
from lazarus.diagnose.diagnosis import Diagnosis, diagnose
from lazarus.diagnose.evidence import Change, Evidence, LogLine, Peer, gather
from lazarus.diagnose.features import Example, load_history
from lazarus.diagnose.graph import DependencyGraph
from lazarus.diagnose.kinds import Kind, cluster
from lazarus.diagnose.rank import Cause, rank
from lazarus.diagnose.signatures import Signature, load_signatures

__all__ = [
    "Cause",
    "Change",
    "Classifier",
    "DependencyGraph",
    "Diagnosis",
    "Evidence",
    "Example",
    "Kind",
    "LogLine",
    "Peer",
    "Signature",
    "TrainingError",
    "cluster",
    "cross_validate",
    "diagnose",
    "gather",
    "load_history",
    "load_signatures",
    "rank",
]
