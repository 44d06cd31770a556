"""What the on-call sees in the Prefect UI: the live incident board and each incident's report.

The board is one keyed table artifact (``incident-board``) that every watch cycle and every
recover run replaces, so its latest version under Artifacts is the fleet's open incidents now.
The report (``incident-<id>``) is the incident's whole timeline (lazarus.oncall).
"""

from __future__ import annotations

import time

from prefect.artifacts import create_markdown_artifact, create_table_artifact

from lazarus.config import Config
from lazarus.model import Incident
from lazarus.oncall import board_rows, report_markdown
from lazarus.store import Store
from tasks.runtime import open_store

BOARD = "incident-board"
EMPTY = [{"incident": "-", "state": "no open incidents"}]


def publish_board(config: Config) -> int:
    """Replace the incident board with the store's active incidents; returns how many."""
    store = open_store(config)
    try:
        rows = board_rows(store, time.time())
    finally:
        store.close()
    create_table_artifact(
        key=BOARD,
        table=rows or EMPTY,
        description=f"Open incidents: {len(rows)} (age, who acked, who approved, recover run)",
    )
    return len(rows)


def publish_report(store: Store, incident: Incident) -> None:
    """The incident's report with its timeline, beside the run that acted on it."""
    create_markdown_artifact(
        key=f"incident-{incident.id}",
        markdown=report_markdown(store, incident, time.time()),
        description=f"incident {incident.id}: {incident.state}",
    )
