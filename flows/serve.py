"""`lazarus serve -c CONFIG`: the watch loop on its interval in this process, as long as it runs;
and, when the config has a ``server:`` section, the authenticated HTTP endpoint (alert intake,
and the signed ack and silence links of messages when ``server.links`` is set).

Without ``PREFECT_API_URL`` the loop runs on Prefect's local server, which lives inside this
process (nothing else to start; nobody else can reach it, so nothing on demand is served).
With it, the loop's runs report to that server, and the recover, acknowledge, backtest and
watch (one cycle now) deployments are served from here for the UI's Run buttons and the
automations. Either way each stretch of the loop is one ``watch-loop`` flow run (flows.loop).
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from prefect import serve
from prefect.settings import PREFECT_API_URL

from flows.acknowledge import acknowledge
from flows.backtest import backtest
from flows.loop import watch_loop
from flows.recover import recover, run_recover
from flows.watch import PARALLEL_RECOVERIES, watch
from lazarus.incidents import remediable
from lazarus.intake.routes import add_alert_routes
from lazarus.model import Incident
from lazarus.notify.escalation import AckInput
from lazarus.oncall_web import add_link_routes
from lazarus.secrets import resolve
from lazarus.web import WebServer
from tasks.events import emit_incident
from tasks.notify import reach_for
from tasks.remediate import playbooks_for_watch
from tasks.runtime import load, open_store

log = logging.getLogger(__name__)
RESTART_AFTER = 10.0  # seconds between tries to start a stretch of the loop that failed


def serve_flows(config_path: Path, stretches: int | None = None) -> None:
    """Run the watch loop (``stretches`` of it, or forever), with the alert intake and, when a
    Prefect server is configured, the on-demand flows served beside it."""
    config = load(config_path)
    api = PREFECT_API_URL.value()
    where = f"the Prefect server at {api}" if api else "Prefect's local server in this process"
    print(
        f"lazarus serve: watching every {config.watch.interval:g}s on {where}"
        + ("" if api else " (set PREFECT_API_URL to use your own server and its UI)"),
        flush=True,
    )
    web = start_web(config_path)
    try:
        if not api:
            _loop(config_path, stretches)
            return
        threading.Thread(
            target=_loop, args=(config_path, stretches), name="watch-loop", daemon=True
        ).start()
        params = {"config_path": str(config_path)}
        serve(
            recover.to_deployment(name="recover", parameters=params),
            acknowledge.to_deployment(name="acknowledge", parameters=params),
            backtest.to_deployment(name="backtest", parameters=params),
            watch.to_deployment(name="watch", parameters=params),  # one cycle, by hand
            print_starting_message=False,
        )
    finally:
        if web is not None:
            web.stop()


def _loop(config_path: Path, stretches: int | None) -> None:
    """Stretch after stretch. One that cannot even start (the Prefect server away, the config
    file gone) is logged and tried again, never the end of the watch: a cycle's own failures
    are the loop's (flows.loop), and an outside checker hears the heartbeats stop."""
    done = 0
    while stretches is None or done < stretches:
        try:
            watch_loop(str(config_path))
        except Exception:
            log.exception("the watch loop stopped; it starts again in %g s", RESTART_AFTER)
            time.sleep(RESTART_AFTER)
        done += 1


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

    def on_ack(incident: Incident, ack: AckInput) -> None:
        emit_incident(incident, "acknowledged", by=ack.acknowledged_by, comment=ack.comment)

    store = open_store(config)
    add_alert_routes(web, config, store, on_opened)
    add_link_routes(web, config, store, reach_for(config), on_ack)
    web.start()
    return web


def _recover(incident_id: int, config_path: str) -> None:
    try:
        run_recover(incident_id, config_path, actor="automation")
    except Exception:
        log.exception("recovery of incident #%d failed", incident_id)
