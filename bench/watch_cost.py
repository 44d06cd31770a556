"""Cost of one watch cycle: seconds and Prefect task runs per cycle, by fleet size, shards and
store, and whether a cycle fits the interval.

    python bench/watch_cost.py --sizes 10,100,1000 --cycles 5 [--faults 500,hang] [--sandbox]
    python bench/watch_cost.py --ssh --sizes 100,1000 --faults "" --cycles 3   # SSH metrics
    python bench/watch_cost.py --sizes 1000,5000 --shards 1,2 --stores sqlite,postgres \
        --faults "" --interval 15s      # the side-by-side table of the README

Runs the real ``flows.watch.watch`` flow in Prefect's local ephemeral mode (each shard process
its own Prefect home in a temp folder, removed at the end unless ``--keep``). Targets are
synthetic hosts ``syn-0001``... whose one service is probed at
``http://127.0.0.1:PORT/health/<host>`` on a threaded HTTP server in a child process. The server
closes every connection (HTTP/1.0), so each probe pays a TCP connect as it would against
distinct hosts. ``--ssh`` gives every synthetic host its own loopback address served by real
OpenSSH sshd processes (bench/ssh_fleet.py, host keys pinned and verified) and reads its SSH
metrics each cycle. ``--sandbox`` swaps three synthetic targets for the three sandbox hosts
(real sshd + web, host metrics over SSH); it needs root and takes its name and subnet from
LAZARUS_TEST_SANDBOX (name:subnet).

Per size, store, shard count and phase (healthy, then each of ``--faults``): a fresh folder and
state, the config's ``watch.interval`` set to ``--interval`` (detectors size their history by
it), one healthy warm-up cycle per shard (not counted: Prefect starts, SSH connections open),
then ``--cycles`` cycles. Each shard runs in a process of its own, as N workers run them, and
the shards begin each cycle together. A cycle's time is its lease in the store (begin to
finish of the stages, without the flow run's start-up, as the served loop runs them), the
slowest shard's; ``kept`` says whether every cycle fitted ``--interval``; above each row, the
config's load time (median of 3), which a deployment's run pays before each cycle; ``ssh min``
is the fewest hosts whose SSH metrics a cycle read. ``--stores postgres`` puts the store on a
throwaway PostgreSQL 15 cluster (``state.url``, a fresh database per row; needs root and
Debian's postgresql-15). Under a fault every tenth synthetic target answers 500 (``500``) or
not at all within the probe timeout (``hang``), so detection opens incidents on the second
cycle, correlation files them and notify delivers them to a local HTTP sink, one message per
host (``group_by: [host]``, the costly case). Recovery is off. Task runs are counted from the
Prefect API per flow run. Prints the figures; asserts nothing about time.
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing
import os
import shutil
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from multiprocessing.queues import Queue
from multiprocessing.sharedctypes import Synchronized
from multiprocessing.synchronize import Barrier
from pathlib import Path
from typing import Any
from uuid import UUID

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.ssh_fleet import SshFleet
from flows.cli import prefect_environment
from lazarus.sandbox.files import PLAYBOOKS, write_yaml

FAIL_EVERY = 10  # with a fault on, syn-0010, syn-0020 ... fail: 10% of the synthetic targets
FAULTS = ("", "500", "hang")  # index shared with the server process: none, HTTP 500, no answer
PROBE_TIMEOUT_S = 2.0
HANG_S = PROBE_TIMEOUT_S + 1.0
BARRIER_S = 1800.0  # a shard process that neither arrives nor fails in this long is stuck


# --- the synthetic fleet: one HTTP server, one /health/<host> path per target ----------------


def _serve(port: Synchronized, fault: Synchronized) -> None:
    """Child process: answer /health/syn-NNNN with 200; every tenth gets the fault while on."""

    class Health(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            number = self.path.rsplit("-", 1)[-1]
            mode = FAULTS[fault.value] if number.isdigit() and int(number) % FAIL_EVERY == 0 else ""
            if mode == "hang":
                time.sleep(HANG_S)  # past the probe's timeout; the client has given up
            body = b"failing" if mode else b"ok"
            self.send_response(500 if mode else 200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

        def handle(self) -> None:
            with contextlib.suppress(OSError):  # a hung probe's client is gone when we answer
                super().handle()

    class Server(ThreadingHTTPServer):
        request_queue_size = 1024  # 1,000 probes may connect in one burst

    httpd = Server(("127.0.0.1", 0), Health)
    port.value = httpd.server_address[1]
    httpd.serve_forever()


class Fleet:
    """The synthetic targets' server in a child process, stopped by its PID in ``stop``."""

    def __init__(self) -> None:
        ctx = multiprocessing.get_context("spawn")
        self._port = ctx.Value("i", 0)
        self._fault = ctx.Value("b", 0)
        self._proc = ctx.Process(target=_serve, args=(self._port, self._fault), daemon=True)

    def start(self, timeout: float = 30.0) -> Fleet:
        self._proc.start()
        deadline = time.monotonic() + timeout
        while not self._port.value:
            if time.monotonic() > deadline or not self._proc.is_alive():
                self.stop()
                raise RuntimeError("the synthetic fleet's HTTP server did not start")
            time.sleep(0.05)
        return self

    @property
    def port(self) -> int:
        return int(self._port.value)

    def fail(self, mode: str) -> None:
        """``""`` heals; ``500`` or ``hang`` breaks every tenth synthetic target."""
        self._fault.value = FAULTS.index(mode)

    def stop(self) -> None:
        if self._proc.pid is not None and self._proc.is_alive():
            os.kill(self._proc.pid, signal.SIGTERM)
            self._proc.join(timeout=10)


# --- config ---------------------------------------------------------------------------------


def write_config(
    folder: Path,
    synthetic: int,
    port: int,
    sink_port: int,
    interval: float,
    sandbox: Any | None,
    state: dict[str, str] | None = None,
    ssh: SshFleet | None = None,
) -> Path:
    """A lazarus.yaml with ``synthetic`` targets (plus the sandbox's hosts), recovery off.

    With ``ssh``, each synthetic host is one of its sshd addresses and has SSH metrics read.
    """
    import yaml

    inventory: dict[str, Any] = {
        "ssh": {"user": "root", "key": str(folder / "no-key")},
        "hosts": [],
        "services": [],
    }
    sources: list[dict[str, Any]] = []
    if sandbox is not None:
        inventory = yaml.safe_load(sandbox.config_path.read_text())["inventory"]
        pinned = inventory["ssh"]
        pinned.update({k: str(sandbox.root / pinned[k]) for k in ("key", "known_hosts")})
        sources = [{"kind": "ssh_metrics", "hosts": {"role": "web"}}]
    if ssh is not None:
        inventory["ssh"] = {
            "user": "root",
            "key": str(ssh.key),
            "known_hosts": str(ssh.known_hosts),
            "port": ssh.port,
            "command_timeout": PROBE_TIMEOUT_S * 2,
        }
        sources = [{"kind": "ssh_metrics", "hosts": {"role": "syn"}}]
    inventory["hosts"] += [
        {
            "name": f"syn-{i:04d}",
            "address": ssh.targets[i - 1].address if ssh is not None else "127.0.0.1",
            "labels": {"role": "syn"},
        }
        for i in range(1, synthetic + 1)
    ]
    inventory["services"].append(
        {
            "name": "syn",
            "hosts": {"role": "syn"},
            "probe": {
                "http": f"http://127.0.0.1:{port}/health/{{host}}",
                "timeout": PROBE_TIMEOUT_S,
            },
            "control": {"kind": "command", "restart": "true"},
        }
    )
    path = folder / "lazarus.yaml"
    write_yaml(
        path,
        {
            "inventory": inventory,
            "sources": sources,
            "notify": {
                "receivers": [
                    {"name": "sink", "urls": [f"json://127.0.0.1:{sink_port}/watch-cost"]}
                ],
                "route": {"receiver": "sink", "group_by": ["host"], "group_wait": "0s"},
                "retries": 0,
            },
            "recovery": {"enabled": False},
            # the interval to keep: detectors size their history by it (a day of 15 s points)
            "watch": {"interval": f"{interval}s"},
            "playbooks": {"dir": str(PLAYBOOKS)},
            "state": state or {"path": "state/lazarus.db"},
        },
    )
    return path


# --- measuring ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Cycle:
    """One cycle over every shard: the slowest shard's lease time, and the sums of the rest."""

    seconds: float
    failing: int
    metric_hosts: int
    tasks: int


@dataclass(frozen=True)
class ShardCycle:
    seconds: float
    failing: int
    metric_hosts: int
    tasks: int


def shard_worker(
    config_path: str,
    shard: int,
    shards: int,
    count: int,
    home: str,
    step: Barrier,
    out: Queue,
) -> None:
    """Child process: one shard as its own worker runs it, with its own Prefect and its own
    warm SSH connections. One warm-up cycle, then ``count`` cycles, each begun with the other
    shards' at the ``step`` barrier (the parent's too: it sets the fault after the warm-up).

    A cycle's time is its lease in the store (``watch_cycles``, begin to finish): the cycle's
    stages without the flow run's start-up, as the served loop runs them.
    """
    os.environ["PREFECT_HOME"] = home
    prefect_environment(Path(home))
    from flows.watch import shard_key, watch
    from lazarus.cycles import history
    from tasks.runtime import load, open_store

    runs = []
    try:
        watch(config_path, shard=shard, shards=shards)
        step.wait()
        for _ in range(count):
            step.wait()
            state = watch(config_path, shard=shard, shards=shards, return_state=True)
            counts = state.result()
            if "cycle" not in counts:
                raise RuntimeError(f"shard {shard + 1}/{shards}: a cycle was skipped: {counts}")
            runs.append((counts, state.state_details.flow_run_id))
        store = open_store(load(config_path))
        try:
            took = {
                r.number: r.finished - r.started
                for r in history(store, shard_key(shard, shards))
                if r.finished
            }
        finally:
            store.close()
        out.put(
            (
                shard,
                [
                    ShardCycle(took[c["cycle"]], c["failing"], c["metric_hosts"], task_runs(i))
                    for c, i in runs
                ],
            )
        )
    except BaseException as exc:
        step.abort()
        out.put((shard, f"{type(exc).__name__}: {exc}"))
        raise


def run_cycles(
    config_path: Path, count: int, shards: int, homes: Path, set_fault: Callable[[], None]
) -> list[Cycle]:
    """``count`` cycles, each the ``shards`` shard watches side by side in their own processes
    (as N workers run them), after one warm-up cycle and ``set_fault``."""
    ctx = multiprocessing.get_context("spawn")
    step = ctx.Barrier(shards + 1, timeout=BARRIER_S)
    out = ctx.Queue()
    procs = [
        ctx.Process(
            target=shard_worker,
            args=(str(config_path), i, shards, count, str(homes / f"shard-{i}"), step, out),
        )
        for i in range(shards)
    ]
    for proc in procs:
        proc.start()
    try:
        step.wait()  # every shard warmed up
        set_fault()
        for _ in range(count):
            step.wait()
        found = dict(out.get(timeout=BARRIER_S) for _ in procs)
    finally:
        for proc in procs:
            proc.join(timeout=60)
            if proc.is_alive() and proc.pid is not None:
                os.kill(proc.pid, signal.SIGTERM)
                proc.join(timeout=10)
    failed = [why for why in found.values() if isinstance(why, str)]
    if failed:
        raise RuntimeError("; ".join(failed))
    return [
        Cycle(
            max(found[i][n].seconds for i in found),
            sum(found[i][n].failing for i in found),
            sum(found[i][n].metric_hosts for i in found),
            sum(found[i][n].tasks for i in found),
        )
        for n in range(count)
    ]


def task_runs(flow_run_id: UUID, settle: float = 10.0) -> int:
    """Task runs the API holds for one flow run, once the count stops growing.

    Task runs reach the server as events, a moment after the flow returns.
    """
    from prefect import get_client
    from prefect.client.schemas.filters import TaskRunFilter, TaskRunFilterFlowRunId

    only = TaskRunFilter(flow_run_id=TaskRunFilterFlowRunId(any_=[flow_run_id]))
    last, deadline = -1, time.monotonic() + settle
    with get_client(sync_client=True) as client:
        while True:
            count = 0
            while page := client.read_task_runs(task_run_filter=only, limit=200, offset=count):
                count += len(page)
            if count == last or time.monotonic() > deadline:
                return count
            last = count
            time.sleep(1.0)


@dataclass(frozen=True)
class Row:
    """One line of the table: a size under one fault."""

    label: str
    store: str
    shards: int
    cycles: list[Cycle]
    interval: float

    def line(self) -> str:
        secs, tasks = [c.seconds for c in self.cycles], [c.tasks for c in self.cycles]
        kept = "yes" if max(secs) <= self.interval else "no"
        return (
            f"{self.label:>22} {self.store:>8} {self.shards:>6} {len(secs):>6}"
            f" {statistics.median(secs):>9.2f} {max(secs):>9.2f} {kept:>5}"
            f" {statistics.median(tasks):>10g} {max(tasks):>9}"
            f" {min(c.metric_hosts for c in self.cycles):>8}"
        )


HEADER = (
    f"{'targets':>22} {'store':>8} {'shards':>6} {'cycles':>6} {'median s':>9} {'max s':>9}"
    f" {'kept':>5} {'tasks med':>10} {'tasks max':>9} {'ssh min':>8}"
)


class Stores:
    """Where each row keeps its state: the SQLite file, or a fresh PostgreSQL database."""

    def __init__(self, names: list[str]):
        self.cluster: Any = None
        if "postgres" in names:
            from lazarus.sandbox.postgres import PostgresServer

            self.cluster = PostgresServer()
        self.made = 0

    def state(self, name: str) -> dict[str, str]:
        if name == "sqlite":
            return {"path": "state/lazarus.db"}
        import psycopg

        self.made += 1
        database = f"watch_cost_{self.made}"
        with psycopg.connect(self.cluster.dsn(), autocommit=True) as admin:
            admin.execute(f"CREATE DATABASE {database}")
        return {"url": self.cluster.dsn(database)}

    def stop(self) -> None:
        if self.cluster is not None:
            self.cluster.stop()


@dataclass(frozen=True)
class Plan:
    """One row's set-up: fleet size, store, shards, the fault and the interval to keep."""

    size: int
    store: str
    shards: int
    fault: str
    cycles: int
    interval: float


def measure(
    plan: Plan,
    root: Path,
    fleet: Fleet,
    sink_port: int,
    sandbox: Any,
    stores: Stores,
    ssh: SshFleet | None = None,
) -> Row:
    """A fresh folder and state, one healthy warm-up cycle, then ``cycles`` under ``fault``.

    A fault runs at least 3 cycles: the second opens the incidents and sends their messages.
    """
    folder = root / f"size-{plan.size}-{plan.store}-{plan.shards}-{plan.fault or 'healthy'}"
    folder.mkdir()
    synthetic = plan.size - (len(sandbox.hosts) if sandbox is not None else 0)
    state = stores.state(plan.store)
    config = write_config(
        folder, synthetic, fleet.port, sink_port, plan.interval, sandbox, state, ssh
    )
    count = max(plan.cycles, 3) if plan.fault else plan.cycles
    print(f"  config load, {plan.size} targets: {config_load(config):.2f} s", flush=True)
    try:
        measured = run_cycles(
            config, count, plan.shards, root / "prefect", lambda: fleet.fail(plan.fault)
        )
    finally:
        fleet.fail("")
    label = f"{plan.size} ({measured[0].failing} {plan.fault})" if plan.fault else f"{plan.size}"
    row = Row(label, plan.store, plan.shards, measured, plan.interval)
    print(row.line(), flush=True)
    return row


def config_load(path: Path, times: int = 3) -> float:
    """Median seconds to read and validate the config: what a deployment's watch run pays
    every cycle before its lease (not in the cycle times; ``lazarus serve`` pays it once)."""
    from lazarus.config import load_config

    took = []
    for _ in range(times):
        start = time.perf_counter()
        load_config(path)
        took.append(time.perf_counter() - start)
    return statistics.median(took)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10,100,1000", help="comma-separated target counts")
    parser.add_argument("--cycles", type=int, default=5, help="measured cycles per phase")
    parser.add_argument(
        "--faults", default="500,hang", help="faulty phases after the healthy one: 500, hang"
    )
    parser.add_argument("--shards", default="1", help="comma-separated shard counts: 1,2")
    parser.add_argument("--stores", default="sqlite", help="comma-separated: sqlite,postgres")
    parser.add_argument("--interval", default="15s", help="the watch interval a cycle must keep")
    parser.add_argument("--sandbox", action="store_true", help="include the 3 sandbox hosts")
    parser.add_argument(
        "--ssh", action="store_true", help="every target its own sshd address, SSH metrics on"
    )
    parser.add_argument("--keep", action="store_true", help="keep the temp folder (Prefect DB)")
    args = parser.parse_args()
    from lazarus.config import parse_duration

    sizes = [int(s) for s in args.sizes.split(",")]
    faults = [f for f in args.faults.split(",") if f]
    shard_counts = [int(s) for s in args.shards.split(",")]
    store_names = [s for s in args.stores.split(",") if s]
    interval = parse_duration(args.interval)
    if not set(faults) <= set(FAULTS[1:]):
        parser.error(f"--faults takes {', '.join(FAULTS[1:])}")
    if not set(store_names) <= {"sqlite", "postgres"} or min(shard_counts) < 1:
        parser.error("--stores takes sqlite, postgres; --shards counts of 1 or more")
    if args.sandbox and min(sizes) <= 3:
        parser.error("with --sandbox every size must exceed the 3 sandbox hosts")
    if args.sandbox and args.ssh:
        parser.error("--sandbox and --ssh each bring their own SSH hosts: pick one")

    root = Path(tempfile.mkdtemp(prefix="lazarus-watch-cost-"))
    prefect_environment()  # each shard process has its own Prefect home (shard_worker)
    from lazarus.sandbox import Sandbox
    from lazarus.sandbox.sinks import SinkProcess

    fleet = Fleet().start()
    sandbox = None
    ssh = SshFleet(root / "ssh", max(sizes)) if args.ssh else None
    stores = Stores(store_names)
    try:
        if ssh is not None:
            ssh.start()
        with SinkProcess(root / "sinks") as sinks:
            if args.sandbox:
                name, _, subnet = os.environ.get("LAZARUS_TEST_SANDBOX", "wcost:219").partition(":")
                sandbox = Sandbox.up(root / "sandbox", name=name, subnet=int(subnet), hosts=3)
            print(f"{os.cpu_count()} cores; temp folder {root}\n{HEADER}", flush=True)
            for size in sizes:
                for fault in ["", *faults]:
                    for shards in shard_counts:
                        for store in store_names:
                            plan = Plan(size, store, shards, fault, args.cycles, interval)
                            measure(plan, root, fleet, sinks.http_port, sandbox, stores, ssh)
    finally:
        if sandbox is not None:
            sandbox.down()
        if ssh is not None:
            ssh.stop()
        stores.stop()
        fleet.stop()
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
