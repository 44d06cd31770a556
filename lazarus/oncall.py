"""The on-call's view of an incident: its timeline, who acked and who approved, and the rows of
the live incident board.

Everything comes from the store (incidents, deliveries, the action audit), so the CLI
(`lazarus incidents`), the recover run's report artifact and the watch's board show the same.
A person's steps are audit rows too: ``oncall.ack``, ``oncall.approve``, ``oncall.reject``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from lazarus.model import Incident, IncidentState
from lazarus.store import Store

ACK, APPROVE, REJECT = "oncall.ack", "oncall.approve", "oncall.reject"
NOBODY = "nobody yet"  # not "-": the UI's table renders markdown, where that is a bullet


@dataclass(frozen=True)
class Entry:
    """One line of an incident's timeline."""

    at: float
    what: str
    who: str = ""
    ok: bool = True
    detail: str = ""


def record_step(store: Store, incident: Incident, step: str, who: str, detail: str = "") -> None:
    """Put a person's step (ACK, APPROVE, REJECT) in the incident's audit."""
    store.record_action(incident.id, step, incident.target, who, step != REJECT, detail)


def timeline(store: Store, incident: Incident) -> list[Entry]:
    """Detected, each page and message (to whom, when), acks, each action with its result,
    approvals with their comment, and how it ended; in time order."""
    entries = [Entry(incident.detected_at, "detected", detail=incident.summary)]
    for d in store.deliveries(incident.id):
        result = "delivered" if d.ok else f"FAILED: {d.error}"
        entries.append(Entry(d.at, f"notified {d.event}", d.receiver, d.ok, result))
    for a in store.actions(incident.id):
        what = {ACK: "acknowledged", APPROVE: "approved", REJECT: "rejected"}.get(a.action)
        entries.append(Entry(a.at, what or f"{a.action} on {a.target}", a.actor, a.ok, a.detail))
    if incident.closed_at and incident.state in (IncidentState.RESOLVED, IncidentState.ESCALATED):
        entries.append(Entry(incident.closed_at, str(incident.state), detail=incident.reason))
    return sorted(entries, key=lambda e: e.at)


def _last(store: Store, incident: Incident, steps: tuple[str, ...]) -> str:
    found = [a for a in store.actions(incident.id) if a.action in steps]
    if not found:
        return ""
    a = found[-1]
    verb = "" if a.action in (ACK, APPROVE) else "rejected by "
    return f"{verb}{a.actor}" + (f" ({a.detail})" if a.detail else "")


def acked_by(store: Store, incident: Incident) -> str:
    return _last(store, incident, (ACK,))


def approved_by(store: Store, incident: Incident) -> str:
    return _last(store, incident, (APPROVE, REJECT))


def durations(incident: Incident) -> dict[str, float | None]:
    """Seconds from detection to the first notification and to the end (None until then)."""
    start = incident.detected_at
    end = incident.closed_at if incident.state == IncidentState.RESOLVED else None
    return {
        "time_to_notify": incident.notified_at - start if incident.notified_at else None,
        "time_to_recover": end - start if end else None,
    }


def summary(store: Store, incident: Incident, now: float) -> dict[str, Any]:
    """One incident as the board, `incidents --json` and the report see it."""
    return {
        "id": incident.id,
        "fingerprint": incident.fingerprint,
        "state": str(incident.state),
        "severity": incident.severity,
        "host": incident.host,
        "service": incident.service,
        "symptom": incident.symptom,
        "summary": incident.summary,
        "detected_at": incident.detected_at,
        "age_s": round(now - incident.detected_at, 1),
        "acked_by": acked_by(store, incident),
        "approved_by": approved_by(store, incident),
        "reason": incident.reason,
        "recover_run": incident.flow_run_url,
        **durations(incident),
    }


def details(store: Store, incident: Incident, now: float) -> dict[str, Any]:
    """The summary plus the whole timeline, for `incidents --show ID --json`."""
    return {
        **summary(store, incident, now),
        "timeline": [asdict(e) for e in timeline(store, incident)],
    }


def board_rows(store: Store, now: float) -> list[dict[str, str]]:
    """The live incident board: one row per active incident, newest first."""
    rows = []
    for incident in store.active():
        s = summary(store, incident, now)
        rows.append({
            "incident": f"#{incident.id}",
            "state": s["state"],
            "target": incident.target,
            "symptom": incident.symptom,
            "severity": incident.severity,
            "age": age(s["age_s"]),
            "acked by": s["acked_by"] or NOBODY,
            "approved by": s["approved_by"] or NOBODY,
            "recover run": _link(incident.flow_run_url),
        })  # fmt: skip
    return rows


def report_markdown(store: Store, incident: Incident, now: float) -> str:
    """The incident report: what, when, who was told, who acted, and how it ended."""
    s = summary(store, incident, now)
    lines = [
        f"# Incident #{incident.id}: {incident.symptom} on {incident.target}",
        "",
        f"**{incident.state}** ({incident.severity}): {incident.summary}",
        "",
        f"- detected: {when(incident.detected_at)}",
        f"- acknowledged by: {s['acked_by'] or '-'}",
        f"- approval: {s['approved_by'] or '-'}",
        f"- reason: {incident.reason or '-'}",
        f"- time to notify: {age(s['time_to_notify'])}",
        f"- time to recover: {age(s['time_to_recover'])}",
        f"- recover run: {_link(incident.flow_run_url)}",
        "",
        "| time | what | who | result |",
        "|---|---|---|---|",
    ]
    for e in timeline(store, incident):
        result = ("ok" if e.ok else "FAILED") + (f": {e.detail}" if e.detail else "")
        lines.append(
            f"| {when(e.at)} | {_cell(e.what)} | {_cell(e.who or '-')} | {_cell(result)} |"
        )
    return "\n".join(lines)


def when(at: float | None) -> str:
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%d %H:%M:%SZ") if at else "-"


def age(seconds: float | None) -> str:
    """``45s``, ``12m 5s``, ``3h 2m``; ``-`` when not known."""
    if seconds is None:
        return "-"
    s = int(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m {s % 60}s"
    return f"{s // 3600}h {s % 3600 // 60}m"


def _link(url: str) -> str:
    return f"[run]({url})" if url.startswith("http") else (url or "-")


def _cell(text: str) -> str:
    return text.replace("|", "/").replace("\n", " ")[:200]
