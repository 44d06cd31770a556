"""Acknowledge an incident from the Prefect UI: the run form is the on-call's "I have it".

Stops escalation to the next level and the repeats of its group, and tells the team: an event
(``lazarus.incident.acknowledged``), a message to the incident's receivers, the board and the
incident's audit. `lazarus ack` and the messages' signed ack links do the same.
"""

from __future__ import annotations

from prefect import flow

from lazarus.errors import LazarusError
from lazarus.notify.escalation import AckInput, acked_line
from tasks.events import emit_incident
from tasks.notify import acknowledge_incident, notify, settle
from tasks.oncall import publish_board
from tasks.runtime import load, open_store


@flow(name="acknowledge", log_prints=True)
def acknowledge(
    incident_id: int, acknowledged_by: str, comment: str = "", config_path: str = "lazarus.yaml"
) -> str:
    """Record who took incident ``incident_id``; fails when it is not firing."""
    ack = AckInput(acknowledged_by=acknowledged_by, comment=comment)
    config = load(config_path)
    if not acknowledge_incident(config, incident_id, ack):
        raise LazarusError(f"incident #{incident_id} is not firing: nothing to acknowledge")
    store = open_store(config)
    try:
        incident = store.get(incident_id)
    finally:
        store.close()
    emit_incident(incident, "acknowledged", by=acknowledged_by, comment=comment)
    settle(notify(config, incident, "acknowledged", actions=[acked_line(ack)]))
    publish_board(config)
    return f"incident #{incident_id} acknowledged by {acknowledged_by}"
