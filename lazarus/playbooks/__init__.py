"""Playbooks: declarative recovery procedures, validated strictly and run step by step.

::

    schema.py    the file format (step union generated from actions/), load_playbook/load_dir
    template.py  {{ incident.host }} substitution by dotted names, no eval
    context.py   what a step sees (incident, config, executor, injectable clock)
    engine.py    select, plan (dry run), run (retries, compensation, on_failure, verify)
    guards.py    circuit breaker, fleet cap, error-rate stop (state in the store)

Settings (limits, allow-list, out-of-band command) are lazarus.config.PlaybookSettings.
    actions/     one module per family of actions, each registering itself
"""

from __future__ import annotations

from lazarus.config import PlaybookSettings
from lazarus.playbooks.context import StepContext
from lazarus.playbooks.engine import (
    Hooks,
    PlannedStep,
    PlaybookResult,
    may_match,
    plan,
    run,
    select,
)
from lazarus.playbooks.guards import Guards, run_guarded
from lazarus.playbooks.schema import Playbook, load_dir, load_playbook

__all__ = [
    "Guards",
    "Hooks",
    "PlannedStep",
    "Playbook",
    "PlaybookResult",
    "PlaybookSettings",
    "StepContext",
    "load_dir",
    "load_playbook",
    "may_match",
    "plan",
    "run",
    "run_guarded",
    "select",
]
