"""What the on-call reads: an incident rendered as a short title and a markdown body.

Built only from the Incident (never from config or secrets), so a message can be sent,
stored as an artifact or shown in the UI without leaking anything. ``short`` squeezes it
into one SMS.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

import markdown

from lazarus.model import Incident, target_name
from lazarus.notify.state import Alert, Silence

Event = Literal[
    "opened", "resolved", "escalated", "remediating", "approval", "report", "acknowledged"
]
_HEADINGS = {"approval": "Plan, waiting for approval in the flow run", "report": "Report"}
SMS_LIMIT = 160
GROUP_LIST = 50


@dataclass(frozen=True)
class Message:
    """A rendered notification; ``summary`` is the one line an SMS keeps of the body."""

    title: str
    body: str
    summary: str = ""


def render(
    incident: Incident,
    event: Event,
    *,
    flow_run_url: str = "",
    actions: Sequence[str] = (),
    diagnosis: str = "",
) -> Message:
    """The message for one step of an incident's life (``flow_run_url`` defaults to its own)."""
    severity = incident.severity.upper()
    title = f"[{severity}] #{incident.id} {incident.symptom} {incident.target} — {event}"
    facts = [
        f"**{severity}** incident **#{incident.id}** `{incident.symptom}` on "
        f"**{incident.target}** — {event}",
        "",
        f"- **Summary:** {incident.summary}",
        f"- **Detected:** {_utc(incident.detected_at)}",
        f"- **State:** {incident.state}",
    ]
    if event == "resolved" and incident.closed_at is not None:
        minutes = (incident.closed_at - incident.detected_at) / 60
        facts.append(f"- **Resolved:** {_utc(incident.closed_at)} (after {minutes:.1f} min)")
    if diagnosis:
        facts.append(f"- **Diagnosis:** {diagnosis}")
    if event == "escalated":
        facts.append(f"- **Reason:** {incident.reason or 'not recorded'}")
    if actions:
        heading = _HEADINGS.get(event, "Actions taken")
        facts += [f"- **{heading}:**", *(f"  - {action}" for action in actions)]
    link = flow_run_url or incident.flow_run_url
    if link:
        facts.append(f"- **Flow run:** [{link}]({link})")
    return Message(title, "\n".join(facts), incident.summary)


def render_group(
    group_labels: Mapping[str, str],
    firing: Sequence[Alert],
    resolved: Sequence[Alert] = (),
    *,
    repeat: bool = False,
) -> Message:
    """One message for a whole group, Alertmanager style: ``[FIRING:3] {host="web-1"}``.

    Lists at most ``GROUP_LIST`` alerts of each kind and counts the rest, so a storm stays one
    readable message; the counts in the title are always exact.
    """
    name = ", ".join(f'{k}="{v}"' for k, v in group_labels.items()) or "all"
    state = f"FIRING:{len(firing)}" if firing else "RESOLVED"
    extra = f" RESOLVED:{len(resolved)}" if firing and resolved else ""
    again = " (still firing)" if repeat else ""
    alerts = [*firing, *resolved]
    one = alerts[0].labels if len(alerts) == 1 else None  # one alert: say which, not the group
    subject = f"{one.get('symptom', '')} {_target(one)}" if one else f"{{{name}}}"
    title = f"[{state}{extra}] {subject}{again}"
    lines = [f"**{state}{extra}** group `{{{name}}}`{again}"]
    for heading, alerts in (("Firing", firing), ("Resolved", resolved)):
        if alerts:
            lines += ["", f"**{heading}:**", *(_alert_line(a) for a in alerts[:GROUP_LIST])]
            if len(alerts) > GROUP_LIST:
                lines.append(f"- … and {len(alerts) - GROUP_LIST} more")
    summary = firing[0].summary if firing else resolved[0].summary if resolved else ""
    return Message(title, "\n".join(lines), summary)


def render_page(alert: Alert, level: int, receiver: str) -> Message:
    """An escalation page: nobody acknowledged ``alert`` in time, so level ``level`` hears."""
    title = (
        f"[ESCALATION L{level}] {alert.labels.get('symptom', '')} {_target(alert.labels)}"
        " — unacknowledged"
    )
    body = "\n".join(
        [
            f"**Unacknowledged** since {_utc(alert.starts_at)}; paging level {level} ({receiver}).",
            "",
            _alert_line(alert),
            "",
            f"Acknowledge: `lazarus ack CONFIG {alert.incident_id}`"
            if alert.incident_id is not None
            else "",
        ]
    ).rstrip()
    return Message(title, body, alert.summary)


def render_reminder(silence: Silence) -> Message:
    """A silence is about to end: the on-call may want to extend it."""
    matchers = ", ".join(silence.matchers)
    title = f"[SILENCE ENDING] #{silence.id} {{{matchers}}} at {_utc(silence.ends_at)}"
    body = (
        f"Silence **#{silence.id}** ({silence.comment}, by {silence.created_by}) ends at "
        f"{_utc(silence.ends_at)}; alerts matching `{matchers}` will page again.\n\n"
        f"Extend: `lazarus silence add CONFIG --match ... --for 2h`"
    )
    return Message(title, body, silence.comment)


def _target(labels: Mapping[str, str]) -> str:
    service, host = labels.get("service", ""), labels.get("host", "")
    return target_name(service, host) if service else host


def _alert_line(alert: Alert) -> str:
    labels, target = alert.labels, _target(alert.labels)
    severity = labels.get("severity", "").upper()
    line = f"- **{severity}** `{labels.get('symptom', '')}` on **{target}**: {alert.summary}"
    line += f" (since {_utc(alert.starts_at)})"
    if alert.acked_by:
        line += f" — acked by {alert.acked_by}"
    if alert.flow_run_url:
        line += f" [flow run]({alert.flow_run_url})"
    return line


def short(message: Message) -> str:
    """One SMS (<= 160 characters, plain ASCII dashes so the GSM alphabet keeps 160)."""
    parts = (message.title, message.summary) if message.summary else (message.title,)
    text = " ".join(": ".join(parts).split()).replace("—", "-")
    return text if len(text) <= SMS_LIMIT else text[: SMS_LIMIT - 3].rstrip() + "..."


def as_html(body: str) -> str:
    """The markdown body as HTML, for receivers that show HTML (mail). Raw HTML in it is text:
    a label ``host="web-1<img src=x onerror=…>"`` or a quoted log line is escaped, never
    rendered. Plain-text receivers get the markdown as it is."""
    converter = markdown.Markdown()
    converter.preprocessors.deregister("html_block")
    converter.inlinePatterns.deregister("html")
    return converter.convert(body)


def _utc(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
