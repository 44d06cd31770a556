"""Messages the on-call reads: title, the facts in the body, and the SMS form."""

from __future__ import annotations

from dataclasses import replace

import pytest

from lazarus.model import Incident, IncidentState
from lazarus.notify.links import Reach
from lazarus.notify.message import SMS_LIMIT, Message, render, short

DETECTED = 1_795_000_000.0  # 2026-11-18T11:06:40Z

INCIDENT = Incident(
    id=7,
    fingerprint="web@web-1/service_down",
    host="web-1",
    service="web",
    symptom="service_down",
    severity="critical",
    state=IncidentState.OPEN,
    summary="3 probes in a row failed: connection refused on :8080",
    labels={"team": "web"},
    detected_at=DETECTED,
)


def test_the_title_is_short_and_names_severity_symptom_target_and_event() -> None:
    assert render(INCIDENT, "opened").title == "[CRITICAL] #7 service_down web@web-1 — opened"


def test_the_body_carries_the_facts_an_on_call_needs() -> None:
    body = render(INCIDENT, "opened").body
    for fact in (
        "**CRITICAL**",
        "**#7** service_down on **web@web-1**",
        "3 probes in a row failed: connection refused on :8080",
        "2026-11-18T11:06:40Z",
        "- state: open",
        "- details: `lazarus incidents --show 7`",  # no run yet, no board: the shell line
        "- acknowledge from a shell: `lazarus ack 7`",
    ):
        assert fact in body
    assert "reason" not in body and "recover run" not in body and "done" not in body


def test_shell_lines_carry_the_real_config_path_quoted() -> None:
    body = render(INCIDENT, "opened", reach=Reach("/etc/lazarus/my fleet.yaml")).body
    assert "`lazarus ack -c '/etc/lazarus/my fleet.yaml' 7`" in body
    assert "CONFIG" not in body


def test_without_a_run_the_message_links_the_board() -> None:
    body = render(INCIDENT, "opened", reach=Reach("f.yaml", "http://ui/artifacts/key/b")).body
    assert "the board: <http://ui/artifacts/key/b>" in body


def test_actions_diagnosis_and_the_flow_run_link_appear_when_given() -> None:
    url = "http://127.0.0.1:4200/runs/flow-run/abc"
    body = render(
        replace(INCIDENT, state=IncidentState.REMEDIATING),
        "remediating",
        flow_run_url=url,
        actions=["restart web on web-1: ok", "http.check /health: 200"],
        diagnosis="process exited (OOM killer, 0.9)",
    ).body
    assert "- state: remediating" in body
    assert "- done:\n    - restart web on web-1: ok\n    - http.check /health: 200" in body
    assert "process exited (OOM killer, 0.9)" in body
    assert f"- recover run: <{url}>" in body


def test_the_incident_s_own_flow_run_link_is_the_default() -> None:
    incident = replace(INCIDENT, flow_run_url="http://ui/runs/1")
    assert "<http://ui/runs/1>" in render(incident, "opened").body
    assert "<http://ui/runs/2>" in render(incident, "opened", flow_run_url="http://ui/runs/2").body


def test_an_escalation_says_why() -> None:
    escalated = replace(INCIDENT, state=IncidentState.ESCALATED, reason="restart budget spent")
    message = render(escalated, "escalated")
    assert message.title.endswith("— escalated")
    assert "- reason: restart budget spent" in message.body
    no_reason = render(replace(escalated, reason=""), "escalated").body
    assert "- reason: not recorded" in no_reason


def test_a_resolution_says_when_and_how_long_it_took() -> None:
    resolved = replace(INCIDENT, state=IncidentState.RESOLVED, closed_at=DETECTED + 90)
    body = render(resolved, "resolved").body
    assert "- resolved: 2026-11-18T11:08:10Z (after 1m 30s)" in body


def test_a_host_level_incident_is_named_by_its_host() -> None:
    host_down = replace(INCIDENT, service="", symptom="host_down")
    assert render(host_down, "opened").title == "[CRITICAL] #7 host_down web-1 — opened"


def test_short_fits_one_sms_and_keeps_title_and_summary() -> None:
    text = short(render(INCIDENT, "opened"))
    assert text == (
        "[CRITICAL] #7 service_down web@web-1 - opened: "
        "3 probes in a row failed: connection refused on :8080"
    )
    assert text.isascii()


@pytest.mark.parametrize("length", [100, 161, 1000])
def test_short_cuts_long_summaries_to_160_characters(length: int) -> None:
    incident = replace(INCIDENT, summary="x" * length + "\n\n  tail")
    text = short(render(incident, "opened"))
    assert len(text) <= SMS_LIMIT
    assert "\n" not in text
    assert text.startswith("[CRITICAL] #7 service_down web@web-1 - opened: xxx")
    assert text.endswith("...") == (len(render(incident, "opened").title) + 2 + length > 160)


def test_short_without_summary_is_the_title() -> None:
    assert short(Message("[INFO] x y — opened", "body")) == "[INFO] x y - opened"
