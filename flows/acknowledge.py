"""Acknowledge an incident from the Prefect UI: the run form is the on-call's "I have it".

Stops escalation to the next level and the repeats of its group; `lazarus notify ack` does the
same from a shell.
"""

from __future__ import annotations

from prefect import flow

from lazarus.errors import LazarusError
from lazarus.notify.escalation import AckInput
from tasks.notify import acknowledge_incident
from tasks.runtime import load


@flow(name="acknowledge", log_prints=True)
def acknowledge(
    incident_id: int, acknowledged_by: str, comment: str = "", config_path: str = "lazarus.yaml"
) -> str:
    """Record who took incident ``incident_id``; fails when it is not firing."""
    ack = AckInput(acknowledged_by=acknowledged_by, comment=comment)
    if not acknowledge_incident(load(config_path), incident_id, ack):
        raise LazarusError(f"incident #{incident_id} is not firing: nothing to acknowledge")
    return f"incident #{incident_id} acknowledged by {acknowledged_by}"
