"""What the on-call reads: a short title, a markdown body (chat; HTML for mail) and one SMS line.

Every message names each incident by number, says its state, what was done about it, and where
to look (its recover run, else the incident board, else the shell line that shows it), with the
ways to act: signed ack and silence links when ``lazarus serve`` offers them, and the exact
``lazarus ack -c CONFIG N`` line with the real config path. Built from incidents and the store's
record only (never from config values or secrets), so a message can be sent, stored or shown
anywhere. The body is plain enough for mail's text part: links are their own text, lists are
indented four spaces (Python-Markdown's nesting), and code is kept to lines of its own.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

import markdown

from lazarus.model import Incident, target_name
from lazarus.notify.links import Reach
from lazarus.notify.state import Alert, Silence
from lazarus.oncall import age

Event = Literal[
    "opened", "resolved", "escalated", "remediating", "approval", "report", "acknowledged"
]
# An incident's state as a message says it: ``recovered`` opened and resolved between messages.
Said = Literal["escalated", "firing", "resolved", "recovered"]
WORDS: dict[Said, str] = {
    "escalated": "ESCALATED",
    "firing": "FIRING",
    "resolved": "RESOLVED",
    "recovered": "OPENED AND RECOVERED",
}
_HEADINGS = {"approval": "Plan, waiting for approval in the flow run", "report": "Report"}
_BETWEEN_BLOCKS = re.compile(r"(</?(?:ul|ol|li|p|h\d)>)\n(?=<)")
SMS_LIMIT = 160
GROUP_LIST = 50
DONE_LIST = 12


@dataclass(frozen=True)
class Message:
    """A rendered notification; ``summary`` is the one line an SMS keeps of the body."""

    title: str
    body: str
    summary: str = ""


@dataclass(frozen=True)
class Item:
    """One incident in a grouped message: the alert, how the message says it, and its record
    (number, reason, what was done, the recover run), read from the store when it is sent."""

    alert: Alert
    said: Said
    reason: str = ""
    done: tuple[str, ...] = ()
    diagnosis: str = ""

    @property
    def number(self) -> str:
        return f"#{self.alert.incident_id}" if self.alert.incident_id is not None else ""


def render(
    incident: Incident,
    event: Event | str,
    *,
    flow_run_url: str = "",
    actions: Sequence[str] = (),
    diagnosis: str = "",
    reach: Reach | None = None,
    now: float | None = None,
) -> Message:
    """The message for a step of one incident's life that is not held for its group: a
    person's ack or decision, a plan waiting for approval, a report from a playbook."""
    reach = reach or Reach()
    severity = incident.severity.upper()
    title = f"[{severity}] #{incident.id} {incident.symptom} {incident.target} — {event}"
    lines = [
        f"**{severity}** incident **#{incident.id}** {incident.symptom} on "
        f"**{incident.target}** — {event}",
        "",
        f"- summary: {incident.summary}",
        f"- detected: {_utc(incident.detected_at)}",
        f"- state: {incident.state}",
    ]
    if event == "resolved" and incident.closed_at is not None:
        lines.append(
            f"- resolved: {_utc(incident.closed_at)}"
            f" (after {age(incident.closed_at - incident.detected_at)})"
        )
    if diagnosis:
        lines.append(f"- diagnosis: {diagnosis}")
    if event == "escalated":
        lines.append(f"- reason: {incident.reason or 'not recorded'}")
    if actions:
        heading = _HEADINGS.get(event, "done")
        lines += [f"- {heading}:", *(f"    - {action}" for action in actions)]
    lines += _where(flow_run_url or incident.flow_run_url, incident.id, reach)
    if incident.state not in ("resolved",) and event not in ("acknowledged", "resolved"):
        lines += _act(incident.id, reach, now)
    return Message(title, "\n".join(lines), incident.summary)


def render_group(
    group_labels: Mapping[str, str],
    items: Sequence[Item],
    *,
    repeat: bool = False,
    reach: Reach | None = None,
    now: float | None = None,
) -> Message:
    """One message for a group's state change: ``[FIRING:2 RESOLVED:1] 3 incidents on host
    web-1``, or for one incident ``[RESOLVED] #12 service_down web@web-2``.

    Lists at most ``GROUP_LIST`` incidents of each state and counts the rest, so a storm stays
    one readable message; the counts in the title are always exact.
    """
    reach = reach or Reach()
    by_state = {s: [i for i in items if i.said == s] for s in WORDS}
    counts = " ".join(
        f"{WORDS[s]}:{len(found)}" if len(items) > 1 else WORDS[s]
        for s, found in by_state.items()
        if found
    )
    again = " (still firing)" if repeat else ""
    if len(items) == 1:
        one = items[0]
        labels = one.alert.labels
        subject = f"{one.number} {labels.get('symptom', '')} {_target(labels)}".strip()
    else:
        on = f" on {_group(group_labels)}" if group_labels else ""
        subject = f"{len(items)} incidents{on}"
    title = f"[{counts}] {subject}{again}"
    lines = [f"**{counts}**{again} · {subject}"]
    for said, found in by_state.items():
        if not found:
            continue
        lines += ["", f"**{WORDS[said].capitalize()}:**", ""]
        for item in sorted(found, key=lambda i: i.alert.starts_at)[:GROUP_LIST]:
            lines += _item_lines(item, reach, now)
        if len(found) > GROUP_LIST:
            lines.append(f"- … and {len(found) - GROUP_LIST} more")
    first = items[0].alert.summary if items else ""
    return Message(title, "\n".join(lines), first)


def _item_lines(item: Item, reach: Reach, now: float | None) -> list[str]:
    alert, labels = item.alert, item.alert.labels
    severity = labels.get("severity", "")
    name = " ".join(filter(None, (item.number, labels.get("symptom", ""), "on", _target(labels))))
    lines = [
        f"- **{name}**" + (f" · {severity}" if severity else "") + f" · {_state_word(item)}",
        f"    - {alert.summary}",
    ]
    if item.said in ("resolved", "recovered") and alert.ends_at is not None:
        lines.append(
            f"    - opened {_utc(alert.starts_at)}, resolved {_utc(alert.ends_at)}"
            f" (after {age(alert.ends_at - alert.starts_at)})"
        )
    else:
        since = f" ({age(now - alert.starts_at)} ago)" if now is not None else ""
        lines.append(f"    - since {_utc(alert.starts_at)}{since}")
    if item.reason and item.said != "firing":
        lines.append(f"    - reason: {item.reason}")
    if item.diagnosis:
        lines.append(f"    - diagnosis: {item.diagnosis}")
    if item.done:
        lines += ["    - done:", *(f"        - {d}" for d in item.done[-DONE_LIST:])]
    elif item.said in ("firing", "escalated"):
        lines.append("    - done: nothing yet")
    if alert.acked_by:
        lines.append(f"    - acknowledged by {alert.acked_by}")
    lines += [f"    {line}" for line in _where(alert.flow_run_url, alert.incident_id, reach)]
    if item.said in ("firing", "escalated") and not alert.acked_by:
        lines += [f"    {line}" for line in _act(alert.incident_id, reach, now)]
    return lines


def _state_word(item: Item) -> str:
    return {"recovered": "opened and recovered"}.get(item.said, item.said)


def _where(run_url: str, incident_id: int | None, reach: Reach) -> list[str]:
    """Where to look: the recover run, else the board, else the shell line that shows it."""
    if run_url:
        return [f"- recover run: {_link(run_url)}"]
    if reach.board_url:
        return [f"- no recover run yet; the board: {_link(reach.board_url)}"]
    if incident_id is None:
        return []
    return [f"- details: `{reach.shell('incidents', '--show', incident_id)}`"]


def _act(incident_id: int | None, reach: Reach, now: float | None) -> list[str]:
    """How to take it: the signed links when they are served, and always the shell line."""
    if incident_id is None:
        return []
    lines = []
    if reach.signer is not None and now is not None:
        hours = f"{reach.silence_for / 3600:g}h"
        lines += [
            f"- acknowledge: {_link(reach.signer.url('ack', incident_id, now))}",
            f"- silence for {hours}: {_link(reach.signer.url('silence', incident_id, now))}",
        ]
    return [*lines, f"- acknowledge from a shell: `{reach.shell('ack', incident_id)}`"]


def _link(url: str) -> str:
    """A URL as its own link text, so mail's text part keeps it; other text stays text."""
    return f"<{url}>" if url.startswith(("http://", "https://")) else url


def _group(labels: Mapping[str, str]) -> str:
    return ", ".join(f"{k} {v}" for k, v in labels.items())


def render_page(item: Item, level: int, receiver: str, reach: Reach | None = None,
                now: float | None = None) -> Message:  # fmt: skip
    """An escalation page: nobody acknowledged ``item`` in time, so level ``level`` hears."""
    reach, alert = reach or Reach(), item.alert
    number = f"#{alert.incident_id} " if alert.incident_id is not None else ""
    title = (
        f"[ESCALATION L{level}] {number}{alert.labels.get('symptom', '')} "
        f"{_target(alert.labels)} — unacknowledged"
    )
    lines = [
        f"**Unacknowledged** since {_utc(alert.starts_at)}; paging level {level} ({receiver}).",
        "",
        *_item_lines(item, reach, now),
    ]
    return Message(title, "\n".join(lines), alert.summary)


def render_reminder(silence: Silence, reach: Reach | None = None) -> Message:
    """A silence is about to end: the on-call may want to extend it."""
    reach = reach or Reach()
    matchers = ", ".join(silence.matchers)
    title = f"[SILENCE ENDING] #{silence.id} {{{matchers}}} at {_utc(silence.ends_at)}"
    again = reach.shell("silence add", *(f"--match={m}" for m in silence.matchers), "--for", "2h")
    body = (
        f"Silence **#{silence.id}** ({silence.comment}, by {silence.created_by}) ends at "
        f"{_utc(silence.ends_at)}; alerts matching {matchers} will page again.\n\n"
        f"Extend it:\n\n    {again}\n"
    )
    return Message(title, body, silence.comment)


def _target(labels: Mapping[str, str]) -> str:
    service, host = labels.get("service", ""), labels.get("host", "")
    return target_name(service, host) if service else host


def short(message: Message) -> str:
    """One SMS (<= 160 characters, plain ASCII dashes so the GSM alphabet keeps 160)."""
    parts = (message.title, message.summary) if message.summary else (message.title,)
    text = " ".join(": ".join(parts).split()).replace("—", "-").replace("·", "-")
    return text if len(text) <= SMS_LIMIT else text[: SMS_LIMIT - 3].rstrip() + "..."


def as_html(body: str) -> str:
    """The markdown body as HTML, for receivers that show HTML (mail). Raw HTML in it is text:
    a label ``host="web-1<img src=x onerror=…>"`` or a quoted log line is escaped, never
    rendered. Plain-text receivers get the markdown as it is."""
    converter = markdown.Markdown()
    converter.preprocessors.deregister("html_block")
    converter.inlinePatterns.deregister("html")
    # no text between block tags: mail's plain-text part would make each newline a blank line
    return _BETWEEN_BLOCKS.sub(r"\1", converter.convert(body))


def _utc(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
