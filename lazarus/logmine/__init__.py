"""Log template mining: masking, an online Drain-like miner, persisted state, log signals.

    miner = TemplateMiner()
    match = miner.add("connection from 10.0.0.7 refused")   # Match(template_id, template, is_new)
    miner.resolve(old_id)                                   # ids of merged templates stay valid
    state.save(miner, path); miner = state.load(TemplateMiner, path)

:class:`LogSignals` adds per-service template rates (a numpy series matrix for the detectors),
first-sighting signals and the templates around an onset for diagnosis.
"""

from __future__ import annotations

from lazarus.logmine import state
from lazarus.logmine.formats import LogFormat, iter_lines
from lazarus.logmine.masking import WILDCARD, key_of, mask, sanitize
from lazarus.logmine.miner import Match, TemplateMiner
from lazarus.logmine.signals import LogSignals, NewTemplate, RateMatrix, TemplateActivity

__all__ = [
    "WILDCARD",
    "LogFormat",
    "LogSignals",
    "Match",
    "NewTemplate",
    "RateMatrix",
    "TemplateActivity",
    "TemplateMiner",
    "iter_lines",
    "key_of",
    "mask",
    "sanitize",
    "state",
]
