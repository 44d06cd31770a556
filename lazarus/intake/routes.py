"""The intake's two webhook routes on the web server, one per sender's payload format."""

from __future__ import annotations

from collections.abc import Callable

from lazarus.config import Config
from lazarus.intake.intake import AlertIntake
from lazarus.intake.payload import AlertmanagerPayload, GrafanaPayload, parse
from lazarus.model import Incident
from lazarus.store import Store
from lazarus.web import HttpError, Request, Response, WebServer

ALERTMANAGER_PATH = "/alerts/alertmanager"
GRAFANA_PATH = "/alerts/grafana"


def add_alert_routes(
    server: WebServer, config: Config, store: Store, on_opened: Callable[[Incident], None]
) -> None:
    """POST ALERTMANAGER_PATH and GRAFANA_PATH open incidents; ``on_opened`` starts recovery."""
    for path, model, source in (
        (ALERTMANAGER_PATH, AlertmanagerPayload, "alertmanager"),
        (GRAFANA_PATH, GrafanaPayload, "grafana"),
    ):
        intake = AlertIntake(config, store, source)

        def handle(request: Request, intake: AlertIntake = intake, model: type = model) -> Response:
            alerts = parse(model, request.json())
            result = intake.receive(alerts)
            if alerts and len(result.rejected) == len(alerts):
                raise HttpError(422, f"no alert names an inventory target: {result.rejected[0]}")
            for incident in result.opened:
                on_opened(incident)
            return Response(200, result.summary())

        server.route("POST", path, handle)
