"""Diagnose: rank an incident's probable causes before a playbook is chosen, and show the report.

The ranking's top cause goes to playbook selection (``select(books, incident, cause)``), its
paragraph into the notification, and the full report into an artifact beside the flow run.
"""

from __future__ import annotations

from collections.abc import Sequence

from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from lazarus.config import Config
from lazarus.diagnose import Change, Diagnosis
from lazarus.diagnose import diagnose as diagnose_incident
from lazarus.diagnose.diagnosis import configured_model
from lazarus.errors import ConfigError
from lazarus.logmine.signals import TemplateActivity
from lazarus.model import Incident
from tasks.runtime import open_store


@task(name="diagnose", cache_policy=NO_CACHE)
def diagnose(
    config: Config,
    incident: Incident,
    lines: Sequence[tuple[str, str, str] | TemplateActivity] = (),
    changes: Sequence[Change] = (),
) -> Diagnosis:
    """The ranked causes of ``incident`` from the store's incidents, the config's graph, logs
    and classifier. A model that cannot be read is logged and left out: recovery goes on."""
    logger = get_run_logger()
    try:
        model = configured_model(config)
    except ConfigError as error:
        logger.error("diagnosis without the classifier: %s", error)
        model = None
    store = open_store(config)
    try:
        result = diagnose_incident(
            store, config, incident, lines=lines, changes=changes, model=model
        )
    finally:
        store.close()
    logger.info("incident #%d: %s", incident.id, result.text)
    return result


def diagnosis_artifact(diagnosis: Diagnosis) -> None:
    """The full report (every cause and its evidence) as a markdown artifact of this run."""
    create_markdown_artifact(
        key=f"incident-{diagnosis.incident.id}-diagnosis",
        markdown=diagnosis.markdown(),
        description=f"probable causes of incident {diagnosis.incident.id}",
    )
