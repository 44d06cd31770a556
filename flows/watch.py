"""Watch the fleet once: collect (probes, metrics, logs) -> detect -> correlate -> notify ->
remediate.

``cycle`` is the stages of one cycle; the ``watch`` flow runs one now (a person, a deployment's
run), and ``flows.loop`` runs them on the interval in a warm process (``lazarus serve``). Either
way a cycle first takes the shard's lease (tasks.cycles): one at a time, numbered.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future, wait
from contextvars import copy_context

from prefect import flow, get_run_logger
from prefect.context import SettingsContext
from prefect.utilities.annotations import quote

from flows.recover import claimed_hook, run_recover
from lazarus.config import Config
from lazarus.cycles import LeaseLost, Skipped, holder_id
from lazarus.detect.sources import log_reads
from lazarus.incidents import asks_approval, dependencies_first, remediable
from lazarus.playbooks.leases import awaits_taker
from lazarus.shard import shard_config
from lazarus.store import Store
from tasks.changes import record_changes
from tasks.collect import probe_services, query_sources, reach_hosts
from tasks.cycles import watch_cycle
from tasks.databases import check_databases
from tasks.detect import correlate, detect
from tasks.events import emit_all, publish_summary
from tasks.heartbeat import send_heartbeat
from tasks.logs import collect_logs, log_anomalies
from tasks.notify import dispatch, settle
from tasks.oncall import publish_board
from tasks.remediate import announce_unclaimed, playbooks_for_watch, reconcile_interrupted
from tasks.runtime import load, open_store
from tasks.switch import auto_remediation

PARALLEL_RECOVERIES = 8
STOP_GRACE = 30.0  # seconds an interrupted loop waits for its recover runs before it leaves them
START_WAIT = 30.0  # a run slower than this to claim no longer holds the next ones back
# times a run that crashed before its claim is started again, at the next cycle: each crash
# is another burst of 503s from the Prefect server's SQLite, so waiting for the incident's
# unclaimed hand-over (two lease periods, 2 min by default) would only leave the fault longer
RESTARTS = 3
log = logging.getLogger(__name__)


class Recoveries:
    """The watch's automatic recover runs, beside its loop rather than inside a cycle: a cycle
    starts them and goes on, later cycles keep probing on the interval and collect what ended.

    At most ``PARALLEL_RECOVERIES`` run at once, as workers would run them (the fleet cap and each
    incident's claim still apply inside each run); each is bounded by ``playbooks.timeout``
    (lazarus.playbooks.bound), so none holds a slot, or leaves its incident remediating, for
    good. Each run gets a copy of the starting cycle's context: it is a child of the watch's run.

    Runs start one after another: each creates its Prefect run and claims its incident before
    the next begins. Started together, their writes met on the Prefect server's SQLite, which
    answered ``503`` to all but one, and Prefect's client retried each 2-10 s later: seconds
    before any restart (bench/README.md).

    Each runs on a daemon thread, so a process that is told to stop (``stop``) is not held
    until its runs' bounds: one left behind keeps its lease, and the next start takes it over.
    """

    def __init__(self) -> None:
        self._slots = threading.BoundedSemaphore(PARALLEL_RECOVERIES)
        self._runs: dict[int, Future[str]] = {}
        self._args: dict[int, tuple[str, float]] = {}  # what each was started with, for a retry
        self._restarts: dict[int, int] = {}
        self._gate = threading.Lock()  # held by the run that is starting

    def start(self, incident_ids: Iterable[int], config_path: str, timeout: float) -> None:
        for i in incident_ids:
            if i not in self._runs:  # one run per incident from here; the claim guards the rest
                self._args[i] = (config_path, timeout)
                self._submit(i)

    def _submit(self, incident_id: int) -> None:
        future: Future[str] = Future()
        context, args = copy_context(), self._args[incident_id]

        def body() -> None:
            with self._slots:
                future.set_running_or_notify_cancel()
                try:
                    future.set_result(context.run(self._run, incident_id, *args))
                except BaseException as exc:  # the run's own error, for ``ended`` to log
                    future.set_exception(exc)

        self._runs[incident_id] = future
        threading.Thread(target=body, name=f"lazarus-recover-{incident_id}", daemon=True).start()

    def _run(self, incident_id: int, config_path: str, timeout: float) -> str:
        """One recover run, started once the one before it claimed (``START_WAIT`` at most)."""
        gated, done = self._gate.acquire(timeout=START_WAIT), False

        def claimed() -> None:
            nonlocal done
            if gated and not done:
                done = True
                self._gate.release()

        token = claimed_hook.set(claimed)
        try:
            return run_recover(incident_id, config_path, actor="automation", timeout=timeout)
        finally:
            claimed()
            claimed_hook.reset(token)

    @property
    def running(self) -> int:
        return sum(not f.done() for f in self._runs.values())

    def ended(self) -> list[str]:
        """The outcome words of the runs that ended since the last call. A run that crashed
        before it claimed its incident (a Prefect server answering 503 under load) is started
        again at once, up to ``RESTARTS`` times; one that crashed after its claim, or too often,
        is ``crashed``. Every crash is logged with its incident and traceback; its recover run
        shows it, and the incident says where it stopped."""
        out = []
        for incident_id, future in list(self._runs.items()):
            if not future.done():
                continue
            del self._runs[incident_id]
            outcome = _outcome(incident_id, future)
            config_path, restarts = self._args[incident_id][0], self._restarts.get(incident_id, 0)
            again = outcome == "crashed" and restarts < RESTARTS
            if again and _unclaimed(config_path, incident_id):
                log.warning("the recover run of #%d crashed before acting: started again (%d/%d)",
                            incident_id, restarts + 1, RESTARTS)  # fmt: skip
                self._restarts[incident_id] = restarts + 1
                self._submit(incident_id)
                continue
            del self._args[incident_id]
            self._restarts.pop(incident_id, None)
            out.append(outcome)
        return out

    def close(self) -> list[str]:
        """Wait for the runs still going (each ends by its bound); the outcomes not collected."""
        out: list[str] = []
        while self._runs:
            wait(list(self._runs.values()))
            out += self.ended()
        return out

    def stop(self, grace: float = STOP_GRACE) -> list[int]:
        """Give the runs still going ``grace`` seconds to end (a person stopping the process);
        the incidents of those that did not, left to the next start."""
        if going := [i for i, f in self._runs.items() if not f.done()]:
            log.warning("stopping: waiting up to %g s for the recover runs of #%s",
                        grace, ", #".join(map(str, going)))  # fmt: skip
            wait([self._runs[i] for i in going], timeout=grace)
        left = [i for i, f in self._runs.items() if not f.done()]
        if left:
            log.warning("stopping: the recover runs of #%s are left to the next start",
                        ", #".join(map(str, left)))  # fmt: skip
        return left


def _outcome(incident_id: int, future: Future[str]) -> str:
    """The run's outcome word, or ``crashed``: whatever it raised (a ``BaseException`` too,
    such as a cancellation) is logged with its incident here, never raised into the cycle."""
    try:
        return future.result()
    except BaseException:
        log.exception("the recover run of incident #%d crashed", incident_id)
        return "crashed"


def _unclaimed(config_path: str, incident_id: int) -> bool:
    """Whether no recover run has claimed the incident yet (nothing acted on it), or taken
    over its handed-over recovery (the run meant to take it over crashed first)."""
    store = open_store(load(config_path))
    try:
        return store.get(incident_id).action_at is None or awaits_taker(store, incident_id)
    finally:
        store.close()


def recover_all(incident_ids: list[int], config_path: str, timeout: float = 0.0) -> list[str]:
    """Recover runs side by side, as the watch starts them, until all ended; their outcomes."""
    recoveries = Recoveries()
    recoveries.start(incident_ids, config_path, timeout)
    return recoveries.close()


def recover_detached(incident_id: int, config_path: str) -> threading.Thread:
    """A recover run of its own (no parent) on a thread that outlives this cycle, for a
    playbook that waits for a person's approval: the watch goes on meanwhile (a process that
    exits first leaves it to the stale-lease reconcile). It takes this run's settings (the API)
    and nothing else."""
    settings = SettingsContext.get().model_copy()

    def run() -> None:
        with settings:
            try:
                run_recover(incident_id, config_path, actor="automation")
            except Exception:  # no cycle collects this one: said here, with its incident
                log.exception("the recover run of incident #%d crashed", incident_id)

    thread = threading.Thread(target=run, name=f"recover-{incident_id}", daemon=True)
    thread.start()
    return thread


@flow(name="watch", log_prints=True)
def watch(
    config_path: str = "lazarus.yaml", shard: int = 0, shards: int = 1, remediate: bool = True
) -> dict[str, int]:
    """One cycle over the fleet (or shard ``shard`` of ``shards``) now; returns its counts, or
    ``{"skipped": 1}`` when another watch holds the shard. Less than half an interval after the
    last cycle began, it waits for that half: a streak counts cycles, not runs; when the
    holder's lease lapses within an interval (it stopped renewing: died), it waits for that.

    ``remediate`` false: new incidents are left to the automation ``lazarus deploy`` creates.
    """
    config = load(config_path)
    store = open_store(config)
    key, holder = shard_key(shard, shards), holder_id()
    recoveries = Recoveries()
    try:
        for _ in range(2):
            try:
                with watch_cycle(store, key, holder, interval=config.watch.interval) as got:
                    if not isinstance(got, Skipped):
                        take_over_interrupted(config, config_path, store, remediate, recoveries)
                        counts = cycle(
                            config, config_path, got.number, shard, shards, remediate,
                            recoveries, got.check,
                        )  # fmt: skip
            except LeaseLost as exc:  # another watch has the shard now: this run's part is done
                got = Skipped(str(exc))
                break
            if not isinstance(got, Skipped):  # the cycle's lease is free: the next may begin
                outcomes = recoveries.close()
                counts["resolved"] += outcomes.count("resolved")
                counts["escalated"] += outcomes.count("escalated")
                return counts
            if not 0 < got.wait < config.watch.interval:  # a live holder's: not ours to wait
                break
            time.sleep(got.wait + 0.05)
        get_run_logger().info("watch %s skipped: %s", key, got.reason)
        return {"skipped": 1}
    finally:
        recoveries.close()
        store.close()


def take_over_interrupted(
    config: Config, config_path: str, store: Store, remediate: bool, recoveries: Recoveries
) -> None:
    """What killed recover runs left remediating: escalated, or handed over to another run
    (tasks.remediate.reconcile_interrupted); and incidents whose run died before its claim,
    handed over once (tasks.remediate.announce_unclaimed). A watch that remediates starts that
    run itself, beside its cycles: without a Prefect server (``lazarus serve``'s local mode,
    where a killed serve took its recover runs with it) nothing else would, and with one the
    deployed automation may start one too; exactly one claims or takes the lease."""
    handed = reconcile_interrupted(config, store) + announce_unclaimed(config, store)
    if handed and remediate and auto_remediation():
        recoveries.start([i.id for i in handed], config_path, config.playbooks.timeout)


def shard_key(shard: int, shards: int) -> str:
    return f"{shard + 1}/{shards}"


def cycle(
    config: Config,
    config_path: str,
    number: int,
    shard: int,
    shards: int,
    remediate: bool,
    recoveries: Recoveries,
    check: Callable[[], None] = lambda: None,
) -> dict[str, int]:
    """The stages of cycle ``number``, each a task run of the calling flow run; the recover runs
    it starts go on in ``recoveries`` after it returns. ``check`` raises once the cycle's lease
    may be another's (lazarus.cycles.Cycle.check): before each stage that writes or sends."""
    config = shard_config(config, shard, shards)
    # quoted: Prefect would otherwise walk the whole fleet's config before every task starts
    fleet = quote(config)
    # SSH reads of release links and unit start times, beside the probes: they took ~1 s a
    # cycle under load, more when a unit had just died (its start time is read then), and
    # delayed every incident's recover run by as much (bench/README.md)
    changed = record_changes.submit(fleet)
    observations = probe_services(fleet)
    collected = query_sources(fleet)
    samples = collected.samples
    # quoted too, and every task takes ``fleet``: Prefect walks a task's inputs before it
    # starts, 295,000 objects and ~10 s a cycle at 5,000 targets (bench/README.md)
    seen, sampled = quote(observations), quote(samples)
    down = reach_hosts(fleet, seen)
    logs = collect_logs(fleet)
    reads = collected.reads + log_reads(logs)  # a source failing N cycles: source_down
    changed.result()  # before diagnosis: a release switched this cycle is on record
    check()
    anomalies = detect(fleet, seen, sampled, down, reads) + log_anomalies(fleet, logs)
    anomalies += check_databases(fleet)
    check()
    found = correlate(fleet, anomalies, seen, down, reads)
    outcomes = recoveries.ended()  # runs started by earlier cycles
    if found.opened and remediate and auto_remediation():  # first: messages go out meanwhile
        books = playbooks_for_watch(config)
        opened = dependencies_first(config, found.opened)
        acting = [i for i in opened if remediable(config, books, i, found.hosts_down)]
        automatic = [i.id for i in acting if not asks_approval(books, i)]
        recoveries.start(automatic, config_path, config.playbooks.timeout)
        for incident in (i for i in acting if asks_approval(books, i)):
            recover_detached(incident.id, config_path)  # a person may take minutes to answer
    check()
    deliveries = dispatch(config)  # grouped, muted, escalated: tasks.notify
    publish_board(config)  # the live incident board (tasks.oncall)
    emit_all(found.opened, "opened")
    emit_all(found.closed, "resolved")
    failed_deliveries = settle(deliveries)
    counts = {
        "instances": len(observations),
        "failing": sum(not o.ok for o in observations),
        "metric_hosts": len({s.label("host") for s in samples} - {""}),
        "anomalies": len(anomalies),
        "opened": len(found.opened),
        "closed": len(found.closed),
        "resolved": outcomes.count("resolved"),
        "escalated": outcomes.count("escalated"),
        "recovering": recoveries.running,
        "undelivered": failed_deliveries,
        "cycle": number,
    }
    publish_summary(counts, anomalies, shard=shard, shards=shards)
    send_heartbeat(fleet)  # the dead-man's switch: beats stop when cycles stop
    return counts
