"""`lazarus demo`: the whole loop on real parts, narrated, in about a minute.

Starts the sandbox (hosts with sshd and supervisord, mail and chat sinks), runs watch cycles,
kills the service on one host, and shows detection, the notifications as the sinks received
them, the restart over SSH, verification and the resolved incident; then cleans up.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from flows.drill import drill, warm_up
from lazarus.model import IncidentState
from lazarus.sandbox import Sandbox
from tasks.runtime import load, open_store


def _say(text: str) -> None:
    print(f"[{datetime.now(UTC):%H:%M:%S}] {text}", flush=True)


def run_demo(root: Path, *, hosts: int = 3, fault: str = "kill", keep: bool = False) -> int:
    """Run the demo; exit code 0 when the incident ends resolved and the other hosts untouched."""
    _say(f"starting the sandbox: {hosts} hosts, each with sshd + supervisord + a web service")
    sandbox = Sandbox.up(root.resolve(), name="demo", hosts=hosts)
    try:
        for h in sandbox.hosts:
            _say(
                f"  {h.name}: {h.address} (netns {h.netns or '-'}), health {sandbox.health(h.name)}"
            )
        _say("healthy watch cycles (Prefect starts its local server on the first one)")
        warm_up(sandbox.config_path)
        victim = sandbox.hosts[len(sandbox.hosts) // 2].name
        others = {h.name: sandbox.service_pid(h.name) for h in sandbox.hosts if h.name != victim}
        _say(f"FAULT: {fault} the web service on {victim}")
        result = drill(sandbox, victim, fault)
        return _report(sandbox, result, others)
    finally:
        if keep:
            _say(f"sandbox left up in {root} (stop it: lazarus sandbox down --dir {root})")
        else:
            sandbox.down()
            _say("sandbox stopped and cleaned up")


def _report(sandbox: Sandbox, result, others: dict[str, int | None]) -> int:
    incident = result.incident
    if incident is None:
        _say(f"no incident was opened within the drill's time ({result.cycles} cycles)")
        return 1
    config = load(sandbox.config_path)
    store = open_store(config)
    try:
        _say(
            f"DETECTED incident #{incident.id} {incident.fingerprint} "
            f"{incident.detected_at - result.fault_at:.1f}s after the fault: {incident.summary}"
        )
        for d in store.deliveries(incident.id):
            _say(
                f"NOTIFY {d.event} -> {d.receiver}: {'delivered' if d.ok else 'FAILED ' + d.error}"
            )
        for mail in sandbox.mail():
            _say(f"  mail sink got: {mail.get('subject')!r} to {mail.get('to')}")
        for post in sandbox.chat():
            text = (post.get("json") or {}).get("text") or post.get("body", "")
            _say(f"  chat sink got: {text.splitlines()[0] if text else ''!r}")
        for a in store.actions(incident.id):
            outcome = "ok" if a.ok else "FAILED"
            _say(f"ACTION {a.target} {a.action} by {a.actor}: {outcome} — {a.detail[:120]}")
    finally:
        store.close()
    _say(f"INCIDENT #{incident.id} is {incident.state}: {incident.reason}")
    untouched = all(sandbox.service_pid(h) == pid for h, pid in others.items())
    _say(f"other hosts untouched: {untouched}")
    if incident.state is not IncidentState.RESOLVED:
        return 1
    _say(
        f"time-to-detect {result.time_to_detect:.1f}s, time-to-recover "
        f"{result.time_to_recover:.1f}s (watch interval {config.watch.interval:g}s)"
    )
    return 0 if untouched else 1
