"""Alerts from Alertmanager and Grafana become incidents on inventory targets only."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from lazarus.config import Config
from lazarus.incidents import close_quiet
from lazarus.intake.intake import AlertIntake
from lazarus.intake.payload import AlertmanagerPayload, GrafanaPayload, parse
from lazarus.intake.targets import UnknownTarget, resolve_target
from lazarus.model import IncidentState
from lazarus.store import Store
from lazarus.web import HttpError

STARTS = "2026-12-05T06:00:00.000Z"


@pytest.fixture
def config(tmp_path: Path) -> Config:
    return Config.model_validate(
        {
            "inventory": {
                "ssh": {"key": "k"},
                "hosts": [
                    {"name": "web-1", "address": "10.0.0.1", "labels": {"role": "web"}},
                    {"name": "db-1", "address": "10.0.0.9", "labels": {"role": "db"}},
                ],
                "services": [
                    {"name": "web", "hosts": {"role": "web"}, "probe": {"http": "http://x"}}
                ],
            },
            "base_dir": tmp_path,
        }
    )


def alert(status: str = "firing", starts: str = STARTS, **labels: str) -> dict[str, Any]:
    labels = labels or {"alertname": "WebDown", "host": "web-1", "service": "web"}
    return {
        "status": status,
        "labels": labels,
        "annotations": {"summary": "web is down"},
        "startsAt": starts,
        "endsAt": "0001-01-01T00:00:00Z",
        "fingerprint": "fp1",
    }


def alertmanager(*alerts: dict[str, Any]) -> dict[str, Any]:
    return {"version": "4", "status": "firing", "receiver": "lazarus", "alerts": list(alerts)}


def test_labels_resolve_to_inventory_targets_only(config: Config) -> None:
    inv = config.inventory
    assert resolve_target(inv, {"host": "web-1", "service": "web"}) == ("web-1", "web")
    assert resolve_target(inv, {"instance": "10.0.0.1:8080", "job": "web"}) == ("web-1", "web")
    assert resolve_target(inv, {"instance": "db-1:9100", "job": "node"}) == ("db-1", "")
    with pytest.raises(UnknownTarget, match="host='evil'"):
        resolve_target(inv, {"host": "evil", "service": "web"})
    with pytest.raises(UnknownTarget, match="does not run on host 'db-1'"):
        resolve_target(inv, {"host": "db-1", "service": "web"})
    with pytest.raises(UnknownTarget, match="service='ghost'"):
        resolve_target(inv, {"host": "web-1", "service": "ghost"})
    with pytest.raises(UnknownTarget, match="neither a host nor an instance"):
        resolve_target(inv, {"alertname": "X"})


def test_a_firing_alert_opens_one_incident_and_its_repeats_find_it(
    config: Config, tmp_path: Path
) -> None:
    store = Store(tmp_path / "s.db")
    intake = AlertIntake(config, store, "alertmanager")
    labels = {"alertname": "WebDown", "host": "web-1", "service": "web", "team": "payments"}
    firing = parse(AlertmanagerPayload, alertmanager(alert(symptom="service_down", **labels)))
    first = intake.receive(firing)
    (incident,) = first.opened
    assert (incident.host, incident.service, incident.symptom) == ("web-1", "web", "service_down")
    assert incident.labels["team"] == "payments" and incident.labels["source"] == "alertmanager"
    assert incident.labels["alert_fingerprint"] == "fp1"
    # Alertmanager re-sends the same firing: the same incident, even once Lazarus resolved it.
    assert intake.receive(firing).ongoing == [incident.id]
    store.transition(incident.id, IncidentState.RESOLVED, reason="healed")
    assert intake.receive(firing).ongoing == [incident.id]
    assert len(store.recent()) == 1
    # A new firing of the same alert is a new incident.
    again = parse(AlertmanagerPayload, alertmanager(alert(starts="2026-12-05T07:00:00Z")))
    assert len(intake.receive(again).opened) == 1


def test_the_resolved_notice_closes_the_incident_and_quiet_does_not(
    config: Config, tmp_path: Path
) -> None:
    store = Store(tmp_path / "s.db")
    intake = AlertIntake(config, store, "grafana")
    body = {"receiver": "x", "orgId": 1, "version": "1", "title": "t", "alerts": [alert()]}
    (incident,) = intake.receive(parse(GrafanaPayload, body)).opened
    assert incident.symptom == "WebDown"
    assert close_quiet(store, incident.detected_at + 10_000, after=60) == []
    body["alerts"] = [alert("resolved")]
    (closed,) = intake.receive(parse(GrafanaPayload, body)).resolved
    assert closed.id == incident.id and closed.state is IncidentState.RESOLVED
    assert "grafana: the alert resolved" in closed.reason


def test_a_recovery_in_progress_keeps_its_incident(config: Config, tmp_path: Path) -> None:
    store = Store(tmp_path / "s.db")
    intake = AlertIntake(config, store, "alertmanager")
    (incident,) = intake.receive(parse(AlertmanagerPayload, alertmanager(alert()))).opened
    store.claim(incident.id)
    resolved = parse(AlertmanagerPayload, alertmanager(alert("resolved")))
    assert intake.receive(resolved).resolved == []
    assert store.get(incident.id).state is IncidentState.REMEDIATING


def test_an_alert_naming_no_inventory_target_is_refused(config: Config, tmp_path: Path) -> None:
    store = Store(tmp_path / "s.db")
    intake = AlertIntake(config, store, "alertmanager")
    result = intake.receive(
        parse(AlertmanagerPayload, alertmanager(alert(alertname="X", host="attacker.example")))
    )
    assert result.opened == [] and store.recent() == []
    assert "host='attacker.example'" in result.rejected[0]["reason"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"status": "firing", "alerts": []}, "version"),
        ({"version": "4"}, "alerts"),
        (alertmanager({"status": "firing", "startsAt": STARTS}), "alerts.0.labels"),
        (alertmanager({**alert(), "status": "pending"}), "alerts.0.status"),
        (alertmanager({**alert(), "startsAt": "yesterday"}), "alerts.0.startsAt"),
        ([1, 2], "body"),
    ],
)
def test_a_malformed_body_names_the_field(body: Any, field: str) -> None:
    with pytest.raises(HttpError) as err:
        parse(AlertmanagerPayload, body)
    assert err.value.status == 400 and str(err.value).startswith(f"{field}: ")


def test_the_webhook_route_refuses_bad_requests_and_opens_nothing(
    config: Config, tmp_path: Path
) -> None:
    import http.client
    import json
    import socket

    from lazarus.intake.routes import ALERTMANAGER_PATH, add_alert_routes
    from lazarus.secrets import Secret
    from lazarus.web import WebServer

    store = Store(tmp_path / "s.db")
    opened: list[int] = []
    web = WebServer("127.0.0.1", 0, Secret("tok"))
    add_alert_routes(web, config, store, lambda i: opened.append(i.id))
    host, port = web.url.removeprefix("http://").split(":")

    def post(body: bytes, token: str | None = "tok") -> tuple[int, dict]:
        conn = http.client.HTTPConnection(host, int(port), timeout=10)
        auth = {"Authorization": f"Bearer {token}"} if token else {}
        conn.request("POST", ALERTMANAGER_PATH, body=body, headers=auth)
        response = conn.getresponse()
        return response.status, json.loads(response.read())

    good = json.dumps(alertmanager(alert())).encode()
    with web:
        assert post(good, token=None)[0] == 401 and post(good, token="nope")[0] == 401
        assert store.recent() == [] and opened == []
        status, data = post(json.dumps(alertmanager({"status": "firing"})).encode())
        assert status == 400 and data["error"].startswith("alerts.0.labels: ")
        status, data = post(json.dumps(alertmanager(alert(alertname="X", host="h"))).encode())
        assert status == 422 and "host='h'" in data["error"]
        # 10 MB announced: refused from the headers, before a byte of it is read
        with socket.create_connection((host, int(port)), timeout=10) as sock:
            sock.sendall(
                f"POST {ALERTMANAGER_PATH} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer tok\r\n"
                f"Content-Length: {10 * 1024 * 1024}\r\n\r\n".encode()
                + good
            )
            assert sock.makefile("rb").readline().split()[1] == b"413"
        assert store.recent() == [] and opened == []
        status, data = post(good)
        assert status == 200 and opened == data["opened"] and len(opened) == 1
