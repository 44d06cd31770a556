"""The auto-remediation switch: a Prefect Variable an operator flips from the CLI or the UI.

Off means watch still detects, notifies and emits events, but starts no recover runs.
"""

from __future__ import annotations

from prefect.variables import Variable

NAME = "lazarus_auto_remediation"
STATES = ("on", "off")


def auto_remediation() -> bool:
    """True unless the Variable says ``off`` (a missing Variable means on)."""
    return str(Variable.get(NAME, default="on")).strip().lower() != "off"


def set_auto_remediation(state: str) -> None:
    if state not in STATES:
        raise ValueError(f"auto-remediation must be one of {STATES}, not {state!r}")
    Variable.set(NAME, state, overwrite=True)
