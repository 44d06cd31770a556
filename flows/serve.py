"""`lazarus serve CONFIG`: watch on its interval; recover, acknowledge, backtest on demand; and,
when the config has a ``server:`` section, the authenticated HTTP endpoint (alert intake)."""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from prefect import serve

from flows.acknowledge import acknowledge
from flows.backtest import backtest
from flows.recover import recover
from flows.watch import PARALLEL_RECOVERIES, watch
from lazarus.incidents import remediable
from lazarus.intake.routes import add_alert_routes
from lazarus.model import Incident
from lazarus.secrets import resolve
from lazarus.web import WebServer
from tasks.events import emit_incident
from tasks.remediate import playbooks_for_watch
from tasks.runtime import load, open_store

log = logging.getLogger(__name__)


def serve_flows(config_path: Path) -> None:
    """Register the deployments with the Prefect API and run their flow runs until stopped."""
    config = load(config_path)
    web = start_web(config_path)
    try:
        serve(
            watch.to_deployment(
                name="watch",
                interval=config.watch.interval,
                parameters={"config_path": str(config_path)},
            ),
            recover.to_deployment(name="recover", parameters={"config_path": str(config_path)}),
            backtest.to_deployment(name="backtest", parameters={"config_path": str(config_path)}),
            acknowledge.to_deployment(
                name="acknowledge", parameters={"config_path": str(config_path)}
            ),
        )
    finally:
        if web is not None:
            web.stop()


def start_web(config_path: Path) -> WebServer | None:
    """Start the config's HTTP endpoint with the alert intake on it; None without ``server:``.

    An incident an alert opens is recovered here as the watch would recover it: a recover run
    of its own, when auto-remediation may act on it.
    """
    config = load(config_path)
    if config.server is None:
        return None
    host, port = config.server.address
    web = WebServer(host, port, resolve(config.server.token))
    books = playbooks_for_watch(config)
    pool = ThreadPoolExecutor(PARALLEL_RECOVERIES, thread_name_prefix="lazarus-intake")

    def on_opened(incident: Incident) -> None:
        emit_incident(incident, "opened")
        if remediable(config, books, incident):
            pool.submit(_recover, incident.id, str(config_path))

    add_alert_routes(web, config, open_store(config), on_opened)
    web.start()
    return web


def _recover(incident_id: int, config_path: str) -> None:
    try:
        recover(incident_id, config_path, actor="automation")
    except Exception:
        log.exception("recovery of incident #%d failed", incident_id)
