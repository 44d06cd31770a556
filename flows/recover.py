"""Recover one incident: claim it, restart the service over SSH, verify, resolve or escalate.

Started by the watch flow for each new incident, or by a person from the Prefect UI form.
"""

from __future__ import annotations

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact, create_table_artifact

from lazarus import recover as core
from lazarus.model import Incident, IncidentState
from lazarus.remote.ssh import SshExecutor
from lazarus.store import Store
from tasks.notify import notify, settle
from tasks.remediate import restart_with_retries, verify_recovery
from tasks.runtime import flow_run_url, load, open_store


@flow(name="recover", log_prints=True)
def recover(
    incident_id: int,
    config_path: str = "lazarus.yaml",
    dry_run: bool = False,
    actor: str = "automation",
) -> str:
    """Recover incident ``incident_id``; returns the state it ends in."""
    logger = get_run_logger()
    config = load(config_path)
    store = open_store(config)
    try:
        incident = store.get(incident_id)
        if dry_run or config.recovery.dry_run:
            plan = f"would restart {incident.target} {core.describe_restart(config, incident)}"
            logger.info("dry run, nothing changed: %s", plan)
            return f"dry-run: {plan}"
        claimed = store.claim(incident_id)
        if claimed is None:
            logger.info("incident #%d is %s: another run has it", incident_id, incident.state)
            return f"skipped: {incident.state}"
        url = flow_run_url(config)
        store.set_flow_run_url(incident_id, url)
        final, actions = _restart_and_verify(config, store, claimed, actor)
        futures = notify(config, final, final.state.value, flow_run_url=url, actions=actions)
        settle(futures)
        _artifacts(store, store.get(incident_id))
        return final.state.value
    finally:
        store.close()


def _restart_and_verify(config, store: Store, incident: Incident, actor: str):
    """Restart then verify; the incident comes back resolved or escalated with the reason."""
    described = core.describe_restart(config, incident)
    with SshExecutor(config.inventory.ssh, config.base_dir) as executor:
        state = restart_with_retries(executor, config, incident)
    if state.is_failed():
        error = _error_of(state)
        store.record_action(incident.id, "ssh.restart", described, actor, False, error)
        reason = f"restart failed, not retrying further: {error}"
        return store.transition(incident.id, IncidentState.ESCALATED, reason=reason), [
            f"restart failed: {error}"
        ]
    result = state.result()
    store.record_action(
        incident.id, "ssh.restart", described, actor, True, (result.stdout + result.stderr).strip()
    )
    verified = verify_recovery(config, incident, return_state=True)
    if verified.is_failed():
        error = _error_of(verified)
        store.record_action(incident.id, "verify", incident.target, actor, False, error)
        return store.transition(incident.id, IncidentState.ESCALATED, reason=error), [
            "restarted over SSH",
            f"verification failed: {error}",
        ]
    store.record_action(incident.id, "verify", incident.target, actor, True, "probe passes")
    return store.transition(
        incident.id, IncidentState.RESOLVED, reason="restarted over SSH; health probe passes"
    ), ["restarted over SSH", "verified healthy"]


def _error_of(state) -> str:
    try:
        state.result()
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    return state.message or "failed"


def _artifacts(store: Store, incident: Incident) -> None:
    """The incident report and its action audit, where the UI shows them beside the run."""
    create_markdown_artifact(
        key=f"incident-{incident.id}",
        markdown=(
            f"# Incident #{incident.id}: {incident.fingerprint}\n\n"
            f"- state: **{incident.state}**\n- severity: {incident.severity}\n"
            f"- summary: {incident.summary}\n- reason: {incident.reason}\n"
        ),
        description=f"incident {incident.id}",
    )
    create_table_artifact(
        key=f"incident-{incident.id}-audit",
        table=[
            {
                "action": a.action,
                "target": a.target,
                "actor": a.actor,
                "ok": a.ok,
                "detail": a.detail[:200],
            }
            for a in store.actions(incident.id)
        ],
        description="what recovery did, where and by whom",
    )
