"""Time-to-detect and time-to-recover per fault kind, the watch loop on Prefect's local server
(`lazarus serve` without a server) and on a Prefect server (`--server` mode), side by side:

    python bench/recovery_time.py --runs 5 --interval 5
    python bench/recovery_time.py --faults kill,hang --modes local,server

Each drill injects the fault with the sandbox's own tool (`lazarus sandbox fault`) at a random
point between two cycles, runs the watch loop `lazarus serve` runs (flows.loop) on the interval
until the incident ends (every incident a stopped database opened; for a cut link, until the
host_down incident opens, then counts its pages), and reads both times from the incidents' own
timestamps. Each mode runs
in a child process: `local` without PREFECT_API_URL, `server` against `prefect server start` on a
free loopback port, started here. Needs root (the sandbox). Prints median and max per fault.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import yaml

FAULTS = ("kill", "hang", "db-stop", "bad-release", "fill-disk", "partition")
DETECT_ONLY = {"partition": "host_down"}  # detected and paged once; a person powers it back
CHANGES: dict[str, dict[str, Any]] = {  # what the README adds to watch each kind of fault
    "fill-disk": {
        "sources": [{"kind": "ssh_metrics"}],
        "detectors": {"rules": [
            {"series": "disk_used_ratio", "above": 0.9, "for": 1, "symptom": "disk_full"}
        ]},
    },
    "partition": {
        "sources": [{"kind": "ssh_metrics"}],
        "notify": {
            # drills follow each other within minutes: a group's next page would otherwise
            # wait for group_interval (5m), as Alertmanager's does
            "route": {"receiver": "oncall", "group_by": ["host"], "group_wait": "0s",
                      "group_interval": "1s"},
            "inhibit_rules": [{"source_matchers": ['symptom="host_down"'],
                               "target_matchers": ['symptom="service_down"'], "equal": ["host"]}],
        },
        "recovery": {"enabled": False},  # host.reboot waits for a person's approval
    },
}  # fmt: skip
AFTER_DETECT = 3  # cycles watched after a host-down page, to see that no second one comes


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="drills per fault kind and mode")
    parser.add_argument("--interval", type=float, default=5.0, help="watch interval, seconds")
    parser.add_argument("--faults", default=",".join(FAULTS))
    parser.add_argument("--modes", default="local,server")
    parser.add_argument("--seed", type=int, default=1, help="for the fault's phase in the cycle")
    parser.add_argument("--dir", type=Path, default=Path(".lazarus/bench-recovery"))
    parser.add_argument(
        "--sandbox",
        default=os.environ.get("LAZARUS_TEST_SANDBOX", "bench:215"),
        help="NAME:SUBNET of the sandbox (LAZARUS_TEST_SANDBOX by default)",
    )
    parser.add_argument("--child", choices=["local", "server"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        drills(args)
        return 0
    results = {mode: run_mode(mode, args) for mode in args.modes.split(",")}
    report(results, args)
    return 0 if all(r for r in results.values()) else 1


def run_mode(mode: str, args: argparse.Namespace) -> dict[str, list[list[float | None]]]:
    """One child process for ``mode``; its drills' (detect, recover) seconds per fault."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_API")}
    argv = [sys.executable, __file__, "--child", mode, *sys.argv[1:]]
    if mode == "local":
        return _child(argv, env)
    with tempfile.TemporaryDirectory(prefix="lazarus-bench-server-") as home:
        server, api = _prefect_server(Path(home), env)
        try:
            return _child(argv, {**env, "PREFECT_API_URL": api})
        finally:
            server.terminate()
            server.wait(timeout=60)


def _child(argv: list[str], env: dict[str, str]) -> dict[str, list[list[float | None]]]:
    done = subprocess.run(argv, env=env, stdout=subprocess.PIPE, text=True, check=False)
    lines = [x for x in done.stdout.splitlines() if x.startswith("RESULT ")]
    return json.loads(lines[-1][len("RESULT ") :]) if lines else {}


def _prefect_server(home: Path, env: dict[str, str]) -> tuple[subprocess.Popen, str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    api = f"http://127.0.0.1:{port}/api"
    database = f"sqlite+aiosqlite:///{home}/prefect.db"
    server_env = {**env, "PREFECT_HOME": str(home), "PREFECT_API_URL": api,
                  "PREFECT_API_DATABASE_CONNECTION_URL": database}  # fmt: skip
    prefect = Path(sys.executable).parent / "prefect"
    proc = subprocess.Popen(
        [str(prefect), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        env=server_env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    for _ in range(480):
        try:
            if httpx.get(f"{api}/health", timeout=2).status_code == 200:
                return proc, api
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    proc.kill()
    raise SystemExit("prefect server did not become healthy in 4 minutes")


def drills(args: argparse.Namespace) -> dict[str, list[list[float | None]]]:
    """In the child: a sandbox, then ``runs`` drills of each fault; (detect, recover) each,
    printed as a ``RESULT`` line after each fault."""
    from flows.cli import prefect_environment

    prefect_environment()
    from flows.drill import drill, warm_up
    from flows.loop import watch_until
    from lazarus.sandbox import Sandbox

    rng = random.Random(args.seed)
    out: dict[str, list[list[float | None]]] = {}
    name, _, subnet = args.sandbox.partition(":")
    sandbox = Sandbox.up(args.dir.resolve(), name=name, hosts=3, subnet=int(subnet or 215))
    try:
        for fault in args.faults.split(","):
            config = _variant(sandbox.config_path, fault)
            warm_up(config, cycles=1)
            out[fault] = []
            for i in range(args.runs):
                host = _victim(sandbox, fault, i)
                phase = rng.uniform(0, args.interval)
                mails = len(sandbox.mail())
                result = drill(sandbox, host, fault, config_path=config, phase=phase,
                               interval=args.interval, timeout=90,
                               detect_only=fault in DETECT_ONLY,
                               symptom=DETECT_ONLY.get(fault, ""))  # fmt: skip
                pages = None
                if fault in DETECT_ONLY and result.incident is not None:
                    watch_until(str(config), interval=args.interval,
                                until=lambda r: len(r.cycles) >= AFTER_DETECT)  # fmt: skip
                    pages = _pages(sandbox.mail()[mails:], result.incident.symptom, host)
                steps = _steps(config, result)
                out[fault].append([result.time_to_detect, result.time_to_recover, pages,
                                   *_phases(result)])  # fmt: skip
                print(f"{args.child} {fault} {i + 1}/{args.runs} {host}: "
                      + _timeline(result) + ("" if pages is None else f", {pages} page(s)")
                      + "".join(f"\n    {line}" for line in steps),
                      file=sys.stderr, flush=True)  # fmt: skip
                sandbox.fault(host, "heal" if fault == "partition" else "clear")
                _forget(config)
            print("RESULT " + json.dumps(out), flush=True)  # so far: a stopped run still counts
    finally:
        sandbox.down()
    return out


def _victim(sandbox: Any, fault: str, i: int) -> str:
    """The host to break: the database's for db-stop; for a cut link a host without it (its
    services alone fail); else each host in turn."""
    if fault == "db-stop":
        if sandbox.database is None:
            raise SystemExit(
                "db-stop needs the sandbox's PostgreSQL (apt-get install postgresql-15)"
            )
        return sandbox.database.host
    hosts = [h.name for h in sandbox.hosts]
    if fault == "partition" and sandbox.database is not None:
        hosts.remove(sandbox.database.host)
    return hosts[i % len(hosts)]


def _timeline(result: Any) -> str:
    """Where the seconds went, from the first incident's own stamps: detected, recover run
    started (claimed), verified; 'nan' where the drill did not get that far."""
    first, at = result.incident, result.fault_at
    if first is None:
        return "no incident"
    stamps = {"detect": first.detected_at, "claim": first.action_at,
              "recover": at + (result.time_to_recover or float("nan"))}  # fmt: skip
    steps = " ".join(f"{k} {(v or float('nan')) - at:.1f}s" for k, v in stamps.items())
    states = ",".join(sorted({i.state.value for i in result.incidents or (first,)}))
    return f"{steps} ({len(result.incidents)} incident(s): {states})"


def _phases(result: Any) -> list[float | None]:
    """The recovery in three phases, for the incident verified last: fault -> detected,
    detected -> claimed by its recover run (the run's start), claimed -> verified (the
    playbook); None for a phase the drill did not reach."""
    ended = [i for i in result.incidents if i.verified_at] if result.time_to_recover else []
    last = max(ended, key=lambda i: i.verified_at, default=None)
    if last is None or last.action_at is None:
        return [None, None, None]
    at = result.fault_at
    return [last.detected_at - at, last.action_at - last.detected_at,
            last.verified_at - last.action_at]  # fmt: skip


def _steps(config_path: Path, result: Any) -> list[str]:
    """Per incident, seconds after the fault: detected, claimed, each step's end, verified."""
    from tasks.runtime import load, open_store

    store = open_store(load(config_path))
    try:
        lines = []
        for seen in result.incidents:
            incident, at = store.get(seen.id), result.fault_at
            marks = [("detected", incident.detected_at), ("claimed", incident.action_at),
                     *((a.target.split("@")[0], a.at) for a in store.actions(incident.id)),
                     ("verified", incident.verified_at)]  # fmt: skip
            lines.append(f"#{incident.id} {incident.target} {incident.symptom}: " + ", ".join(
                f"{name} {stamp - at:.1f}" for name, stamp in marks if stamp is not None
            ) + f" ({incident.state.value})")  # fmt: skip
        return lines
    finally:
        store.close()


def _pages(mails: list[dict], symptom: str, host: str) -> int:
    """FIRING messages about ``symptom`` on ``host`` among ``mails``."""
    return sum("FIRING" in str(m.get("subject", "")) and symptom in str(m.get("subject", ""))
               and host in str(m) for m in mails)  # fmt: skip


def _variant(config_path: Path, fault: str) -> Path:
    """The sandbox's config with what the README adds for ``fault``, and a state of its own."""
    data = yaml.safe_load(config_path.read_text())
    data["state"] = {"path": f"state/bench-{fault}.db"}
    for key, value in CHANGES.get(fault, {}).items():
        data[key] = {**data.get(key, {}), **value} if isinstance(value, dict) else value
    path = config_path.with_name(f"bench-{fault}.yaml")
    path.write_text(yaml.safe_dump(data))
    return path


def _forget(config_path: Path) -> None:
    """Each drill is a new fault, not flapping: close the breakers as a person would, and end
    the incidents a drill left open so the next one opens its own."""
    from lazarus.model import IncidentState
    from lazarus.playbooks import Guards
    from tasks.remediate import load_playbooks
    from tasks.runtime import load, open_store

    config = load(config_path)
    store = open_store(config)
    try:
        guards = Guards(store)
        targets = {i.target for i in store.recent(500)}  # a database's too (orders-db@web-1)
        for incident in store.active():
            if incident.state is not IncidentState.REMEDIATING:
                store.transition(incident.id, IncidentState.RESOLVED, reason="bench: next drill")
        for target in targets:
            for name in load_playbooks(config):
                guards.reset_breaker(target, name)
    finally:
        store.close()


def report(
    results: dict[str, dict[str, list[list[float | None]]]], args: argparse.Namespace
) -> None:
    modes = list(results)
    print(f"\nwatch interval {args.interval:g}s, {args.runs} drills per fault and mode")
    head = "".join(f" | {m + ' detect':>20} | {m + ' recover':>20}" for m in modes)
    print(f"{'fault':12}{head}\n" + "-" * (12 + 46 * len(modes)))
    for fault in args.faults.split(","):
        cells = ""
        for mode in modes:
            runs = results[mode].get(fault, [])
            for i in (0, 1):
                values = [r[i] for r in runs if r[i] is not None]
                ok = f"{len(values)}/{len(runs)}"
                cells += (
                    f" | {statistics.median(values):5.1f} / {max(values):5.1f}s {ok:>5}"
                    if values
                    else f" | {'-':>13} {ok:>5}"
                )
        print(f"{fault:12}{cells}")
    for fault in args.faults.split(","):
        for mode in modes:
            pages = [r[2] for r in results[mode].get(fault, []) if len(r) > 2 and r[2] is not None]
            if pages:
                print(f"{fault} {mode}: pages per drill {pages}")
    print("(median / max seconds, and how many drills got that far)")
    _breakdown(results, args.faults.split(","))


TARGETS = {"kill": 15.0, "hang": 15.0, "db-stop": 15.0, "bad-release": 15.0, "fill-disk": 20.0}
TARGETS_DETECT = {"partition": 15.0}
SERVER_KILL = 12.0


def _breakdown(results: dict[str, dict[str, list[list[Any]]]], faults: list[str]) -> None:
    """Medians of the three phases of each resolved drill, and the target beside the total."""
    print("\nwhere the seconds go (medians of resolved drills): fault -> detected -> claimed"
          " -> verified, and the target")  # fmt: skip
    print(f"{'fault':12} {'mode':7} {'detect':>7} {'start':>7} {'playbook':>9} {'total':>7}"
          f" {'target':>7}")  # fmt: skip
    for fault in faults:
        for mode, by_fault in results.items():
            runs = [r for r in by_fault.get(fault, []) if len(r) > 5 and r[3] is not None]
            target = SERVER_KILL if (mode, fault) == ("server", "kill") else TARGETS.get(fault)
            if not runs:
                detect = [r[0] for r in by_fault.get(fault, []) if r[0] is not None]
                if fault in TARGETS_DETECT and detect:
                    print(f"{fault:12} {mode:7} {statistics.median(detect):7.1f} {'':>7}"
                          f" {'':>9} {'':>7} {TARGETS_DETECT[fault]:7.0f} (detect)")  # fmt: skip
                continue
            detect, start, playbook = (statistics.median(r[i] for r in runs) for i in (3, 4, 5))
            total = statistics.median(r[1] for r in runs)
            print(f"{fault:12} {mode:7} {detect:7.1f} {start:7.1f} {playbook:9.1f} {total:7.1f}"
                  f" {target or float('nan'):7.0f}")  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
