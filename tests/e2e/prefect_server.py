"""A real Prefect server and process workers for the e2e tests that deploy Lazarus.

Each is a child process in its own session, stopped by its process group; the Lazarus store
helpers read what the deployed runs did.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

# The prefect and lazarus of this interpreter's environment, whatever PATH says.
BIN = Path(sys.executable).parent
FINAL = ("COMPLETED", "FAILED", "CRASHED", "CANCELLED")  # flow run state types that end a run
T = TypeVar("T")


def free_port() -> int:
    """A loopback port nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def end_group(leader: subprocess.Popen, wait: float = 15) -> None:
    """SIGTERM the process group of ``leader`` (which may have exited already, leaving children
    in it), give it ``wait`` seconds, then SIGKILL whatever is left."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(leader.pid, sig)
        except ProcessLookupError:
            break
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            try:
                os.killpg(leader.pid, 0)
            except ProcessLookupError:
                break
            leader.poll()  # reap the leader, so it does not count as alive
            time.sleep(0.2)
    leader.poll()


def stop(proc: subprocess.Popen) -> None:
    """SIGTERM the process group, wait, then SIGKILL it."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)


@contextmanager
def prefect_server(tmp_path: Path, port: int, database_url: str = "") -> Iterator[dict[str, str]]:
    """`prefect server start` on 127.0.0.1:``port`` (SQLite in ``tmp_path`` unless
    ``database_url``); yields the environment that reaches it."""
    api = f"http://127.0.0.1:{port}/api"
    env = {
        **os.environ,
        "PREFECT_HOME": str(tmp_path / "prefect"),
        "DO_NOT_TRACK": "1",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_API_DATABASE_CONNECTION_URL": database_url
        or f"sqlite+aiosqlite:///{tmp_path}/prefect.db",
        "PREFECT_API_URL": api,
        "PREFECT_API_LOG_RETRYABLE_ERRORS": "true",  # the UI does not retry a 503: say why
    }
    log = (tmp_path / f"server-{port}.log").open("w")
    cmd = [str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)]
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=log, start_new_session=True)
    try:
        for _ in range(240):
            try:
                if httpx.get(f"{api}/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.5)
        else:
            pytest.fail(f"prefect server did not become healthy (see {log.name})")
        yield env
    finally:
        stop(proc)
        log.close()


RUN_ID_VAR = b"PREFECT__FLOW_RUN_ID="


@dataclass(frozen=True)
class Worker:
    """A running process worker: its log file, and its process group to end it."""

    name: str
    log: Path
    proc: subprocess.Popen

    def running(self) -> set[str]:
        """Ids of the flow runs this worker's processes run now (Prefect hands each its id in
        PREFECT__FLOW_RUN_ID): which worker runs what, with no log to parse."""
        found: set[str] = set()
        for pid in _descendants(self.proc.pid):
            with contextlib.suppress(OSError):
                env = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
                found |= {v.partition(b"=")[2].decode() for v in env if v.startswith(RUN_ID_VAR)}
        return found

    def die(self) -> None:
        """SIGKILL the worker and every process under it, as a lost machine would end them all
        at once (Prefect starts each flow run in a session of its own, so not by group)."""
        for pid in [*_descendants(self.proc.pid), self.proc.pid]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGSTOP)  # nobody runs on, or starts another, meanwhile
        for pid in [*_descendants(self.proc.pid), self.proc.pid]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.proc.wait(timeout=10)


def _descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (Linux /proc), children before their parents' parents."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(OSError):
            for child in (task / "children").read_text().split():
                found += [*_descendants(int(child)), int(child)]
    return found


@contextmanager
def worker(env: dict[str, str], tmp_path: Path, name: str = "worker") -> Iterator[Worker]:
    """A process worker on the lazarus pool, polling every second, in a working directory of its
    own (``tmp_path/name``, as on a machine of its own)."""
    path = tmp_path / f"{name}.log"
    home = tmp_path / name
    home.mkdir(exist_ok=True)
    log = path.open("w")
    proc = subprocess.Popen(
        [
            BIN / "prefect",
            "worker",
            "start",
            "--pool",
            "lazarus",
            "--type",
            "process",
            "--name",
            name,
        ],
        env={**env, "PREFECT_WORKER_QUERY_SECONDS": "1"},
        cwd=home,
        stdout=log,
        stderr=log,
        start_new_session=True,
    )
    try:
        yield Worker(name, path, proc)
    finally:
        stop(proc)
        log.close()


def lazarus(env: dict[str, str], *argv: str) -> subprocess.CompletedProcess:
    """The lazarus CLI against the server in ``env``."""
    return subprocess.run(
        [BIN / "lazarus", *argv], env=env, capture_output=True, text=True, timeout=120
    )


def run_deployment(env: dict[str, str], name: str, **params: object) -> None:
    """`prefect deployment run NAME -p key=value ...`, as a person would from a shell."""
    argv = [BIN / "prefect", "deployment", "run", name]
    for key, value in params.items():
        argv += ["-p", f"{key}={value}"]
    started = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60)
    assert started.returncode == 0, started.stderr


def api(env: dict[str, str], path: str, body: dict[str, Any]) -> Any:
    """POST ``body`` to the server's API at ``path`` (e.g. ``flow_runs/filter``)."""
    return httpx.post(f"{env['PREFECT_API_URL']}/{path}", json=body, timeout=10).json()


def runs(env: dict[str, str], deployment_id: str) -> list[dict[str, Any]]:
    """The deployment's flow runs, by expected start time."""
    body = {"deployments": {"id": {"any_": [deployment_id]}}, "sort": "EXPECTED_START_TIME_ASC"}
    return api(env, "flow_runs/filter", body)


def wait_for(what: str, check: Callable[[], T | None], limit: float = 90, poll: float = 0.5) -> T:
    """Poll ``check`` every ``poll`` seconds until it returns something true; fail after
    ``limit`` seconds of waiting (the time the checks take comes on top, as a loaded machine
    needs)."""
    for _ in range(int(limit / poll)):
        if found := check():
            return found
        time.sleep(poll)
    pytest.fail(f"timed out waiting for {what}")


def completed(env: dict[str, str], deployment_id: str, count: int = 1) -> list[dict[str, Any]]:
    """The deployment's completed runs once there are ``count``; a failed or crashed run fails
    the test at once. Which runs those are is not fixed: a watch cycle due while another runs is
    cancelled, so the first scheduled run need not be the first to complete."""

    def check() -> list[dict[str, Any]] | None:
        found = runs(env, deployment_id)
        broken = [r for r in found if r["state_type"] in ("FAILED", "CRASHED")]
        assert not broken, [(r["name"], r["state_name"], r["state"]["message"]) for r in broken]
        done = [r for r in found if r["state_type"] == "COMPLETED"]
        return done if len(done) >= count else None

    return wait_for(f"{count} completed run(s) of deployment {deployment_id}", check)


def wait_incident(db: Path | str, host: str, states: tuple[str, ...], limit: float = 90) -> Any:
    """The newest incident on ``host`` in the store ``db`` (a file or a PostgreSQL URL) once it
    is in one of ``states``."""
    from lazarus.store import Store

    def reached() -> Any:
        if isinstance(db, Path) and not db.exists():
            return None
        store = Store(db)
        try:
            found = [i for i in store.recent() if i.host == host]
        finally:
            store.close()
        return found[0] if found and found[0].state in states else None

    # once a second: each look opens the store the runs write to
    return wait_for(f"an incident on {host} in {states}", reached, limit, poll=1.0)


def actions(db: Path | str, incident_id: int) -> list[tuple[str, str, bool]]:
    """(action, actor, ok) of everything recovery did for an incident."""
    from lazarus.store import Store

    store = Store(db)
    try:
        return [(a.action, a.actor, a.ok) for a in store.actions(incident_id)]
    finally:
        store.close()
