"""Playbook schema, shipped playbooks' dry-run plans, the engine (retries, compensation,
verify) and the guards. The executor is an in-memory test double of the Executor protocol."""

from __future__ import annotations

import random
import threading
import time
from pathlib import Path

import pytest

from lazarus.config import AllowedCommand, Config, ErrorRate, RunWindow
from lazarus.errors import ConfigError, ConnectTimeout, Throttled, UnitNotFound
from lazarus.model import CommandResult, Incident, IncidentState
from lazarus.playbooks import (
    Guards,
    Hooks,
    Playbook,
    PlaybookSettings,
    StepContext,
    load_dir,
    load_playbook,
    may_match,
    plan,
    run,
    run_guarded,
    select,
)
from lazarus.playbooks.schema import StepBase
from lazarus.store import Store

ROOT = Path(__file__).parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "playbooks"
DEAD_URL = "http://127.0.0.1:9/health"  # discard port: nothing listens, refused at once

CONFIG = Config.model_validate(
    {
        "inventory": {
            "ssh": {"key": "keys/id"},
            "hosts": [{"name": "web-1", "address": "127.0.0.1"}],
            "services": [
                {
                    "name": "api",
                    "probe": {"http": "http://{address}:9/health"},
                    "control": {"kind": "supervisor"},
                    "labels": {"depends_on": "cache"},
                    "releases": {"dir": "/srv/app/{host}/releases"},
                    "depends_on": ["cache"],
                },
                {
                    "name": "cache",
                    "probe": {"http": "http://{address}:9/ping"},
                    "control": {"kind": "systemd", "unit": "redis"},
                },
            ],
            "databases": [
                {
                    "name": "orders",
                    "kind": "sqlite",
                    "host": "web-1",
                    "dsn": "orders.db",
                    "snapshots": {"dir": "snaps"},
                }
            ],
        },
        "base_dir": "/srv/lazarus",
    }
)
SETTINGS = PlaybookSettings(
    out_of_band=["ipmitool", "-H", "{host}-bmc", "power", "cycle"],
    clean_paths=["/var/log/app"],
    allow_commands=[AllowedCommand(argv0="df", args=["-h"])],
)


def incident(symptom: str = "service_down", service: str = "api", **labels: str) -> Incident:
    return Incident(
        1,
        "api@web-1/x",
        "web-1",
        service,
        symptom,
        "critical",
        IncidentState.OPEN,
        "down",
        labels,
        0.0,
    )


class FakeExecutor:
    """Answers each argv from a script of results or errors; records every call."""

    def __init__(self, *answers: object):
        self.answers = list(answers)
        self.calls: list[tuple[str, list[str]]] = []

    def run(self, host, argv, *, timeout=None):
        self.calls.append((host.name, list(argv)))
        answer = self.answers.pop(0) if self.answers else 0
        if isinstance(answer, Exception):
            raise answer
        return CommandResult(host.name, " ".join(argv), int(answer), "", "", 0.01)

    def close(self) -> None:
        pass


class Clock:
    def __init__(self) -> None:
        self.now, self.slept = 1000.0, []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def ctx(
    executor: FakeExecutor | None = None,
    inc: Incident | None = None,
    clock: Clock | None = None,
    **kw: object,
) -> StepContext:
    clock = clock or Clock()
    return StepContext(inc or incident(), CONFIG, SETTINGS, executor, clock.sleep, clock, **kw)


def book(steps: list[dict], **extra: object) -> Playbook:
    return Playbook.model_validate(
        {
            "version": 1,
            "name": "t",
            "trigger": {"matchers": ['symptom="x"']},
            "steps": steps,
            **extra,
        }
    )


# --- shipped playbooks: each validates and its dry-run plan is exactly this ------------------

SUP = ("supervisorctl", "restart", "api")
KEEP_DAMAGED = (
    "steps",
    "keep-damaged",
    "db.snapshot",
    "orders",
    ("snapshot", "sqlite", "damaged", "/srv/lazarus/snaps"),
)
CHECKS_PASS = (
    "verify",
    "checks-pass",
    "db.check",
    "local",
    ("db.check", "database=orders", "within=60.0", "interval=1.0"),
)
EXPECTED_PLANS = {
    "service-down": (
        incident(),
        [
            ("steps", "restart", "ssh.restart", "web-1", SUP),
            ("steps", "check", "http.check", "local", ("GET", DEAD_URL, "expect 200")),
            ("verify", "cleared", "symptom.cleared", "local", ("GET", DEAD_URL, "expect probe ok")),
        ],
    ),
    "service-unhealthy": (
        incident("service_unhealthy"),
        [
            ("steps", "restart", "ssh.restart", "web-1", SUP),
            (
                "steps",
                "restart-dependency",
                "ssh.restart",
                "web-1",
                ("systemctl", "restart", "redis"),
            ),
            ("steps", "check", "http.check", "local", ("GET", DEAD_URL, "expect 200")),
            ("verify", "cleared", "symptom.cleared", "local", ("GET", DEAD_URL, "expect probe ok")),
        ],
    ),
    "db-corrupt": (
        incident("db_corrupt", database="orders"),
        [
            KEEP_DAMAGED,
            (
                "steps",
                "restore",
                "db.restore",
                "orders",
                (
                    "restore",
                    "sqlite",
                    "newest good snapshot that passes its checks",
                    "/srv/lazarus/snaps",
                ),
            ),
            CHECKS_PASS,
        ],
    ),
    "db-interval": (
        incident("db_corrupt", database="orders", pitr="on"),
        [
            KEEP_DAMAGED,
            (
                "steps",
                "diff",
                "db.interval_diff",
                "local",
                ("db.interval_diff", "database=orders", "start=", "end="),
            ),
            (
                "steps",
                "re-apply",
                "db.interval_apply",
                "orders",
                ("re-apply", "the rows db.interval_diff finds"),
            ),
            CHECKS_PASS,
        ],
    ),
    "db-point-in-time": (
        incident("db_corrupt", database="orders", pitr="on"),
        [
            KEEP_DAMAGED,
            ("steps", "point-in-time", "db.pitr", "local", ("db.pitr", "database=orders", "at=")),
            CHECKS_PASS,
        ],
    ),
    "db-stuck-transaction": (
        incident("db_stuck_transaction", database="orders"),
        [
            (
                "steps",
                "end-stuck",
                "db.rollback_stuck",
                "local",
                (
                    "db.rollback_stuck",
                    "database=orders",
                    "idle_in_transaction_for=None",
                    "blocking_for=None",
                ),
            ),
            (
                "verify",
                "writers-moved",
                "db.blocked_cleared",
                "local",
                ("db.blocked_cleared", "database=orders", "within=30.0", "interval=1.0"),
            ),
        ],
    ),
    "disk-full": (
        incident("disk_full", host="web-1", mount="/var"),
        [
            (
                "steps",
                "clean",
                "disk.clean",
                "web-1",
                ("disk.clean", "-mmin +10080", "/var/log/app"),
            ),
            (
                "steps",
                "report",
                "notify",
                "local",
                (
                    "notify",
                    "message=disk-full on web-1 (/var): freed <steps.clean.freed> under "
                    "<steps.clean.paths>",
                ),
            ),
        ],
    ),
    "dependency-down": (
        incident("service_unhealthy"),
        [
            (
                "steps",
                "dependency",
                "dependency.healthy",
                "local",
                ("wait for", "cache@web-1", "within 120s"),
            ),
            ("steps", "check", "http.check", "local", ("GET", DEAD_URL, "expect 200")),
            ("verify", "cleared", "symptom.cleared", "local", ("GET", DEAD_URL, "expect probe ok")),
        ],
    ),
    "host-unreachable": (
        incident("host_down", service=""),
        [
            (
                "steps",
                "tell",
                "notify",
                "local",
                ("notify", "message=web-1 is unreachable: rebooting out of band"),
            ),
            (
                "steps",
                "reboot",
                "host.reboot",
                "local",
                ("ipmitool", "-H", "web-1-bmc", "power", "cycle"),
            ),
            (
                "verify",
                "cleared",
                "symptom.cleared",
                "local",
                ("ssh", "web-1", "true", "expect probe ok"),
            ),
        ],
    ),
    "bad-release": (
        incident("service_unhealthy"),
        [
            (
                "steps",
                "rollback",
                "release.rollback",
                "web-1",
                ("/srv/app/web-1/releases", "current"),
            ),
            ("steps", "check", "http.check", "local", ("GET", DEAD_URL, "expect 200")),
            ("verify", "cleared", "symptom.cleared", "local", ("GET", DEAD_URL, "expect probe ok")),
        ],
    ),
}


def test_every_shipped_playbook_has_an_expected_plan() -> None:
    assert sorted(load_dir(ROOT / "playbooks")) == sorted(EXPECTED_PLANS)


@pytest.mark.parametrize("name", sorted(EXPECTED_PLANS))
def test_shipped_plan_is_exactly(name: str) -> None:
    inc, expected = EXPECTED_PLANS[name]
    executor = FakeExecutor()
    got = plan(load_playbook(ROOT / "playbooks" / f"{name}.yaml"), ctx(executor, inc))
    rows = [(p.block, p.id, p.action, p.host, p.argv) for p in got]
    for row, want in zip(rows, expected, strict=True):
        assert row[:4] == want[:4]
        if row[4][:2] == ("sh", "-c"):  # a fixed script: the data rides as its last tokens
            assert row[4][-len(want[4]) :] == want[4] and all(w not in row[4][2] for w in want[4])
        else:
            assert row[4] == want[4]
    assert executor.calls == []  # a plan changes nothing


def test_step_when_skips_the_dependency_a_service_does_not_name() -> None:
    services = [s.model_dump(by_alias=True) for s in CONFIG.inventory.services]
    services[0]["labels"] = {}
    config = CONFIG.model_copy(
        update={"inventory": CONFIG.inventory.model_copy(update={"services": [
            type(CONFIG.inventory.services[0]).model_validate(s) for s in services
        ]})}
    )  # fmt: skip
    book = load_playbook(ROOT / "playbooks" / "service-unhealthy.yaml")
    ids = [p.id for p in plan(book, StepContext(incident("service_unhealthy"), config))]
    assert ids == ["restart", "check", "cleared"]


def test_may_match_ignores_the_cause_only_diagnosis_can_tell() -> None:
    trigger = {"matchers": ['symptom="service_down", cause="bad_release"']}
    b = book([{"id": "r", "action": "ssh.restart"}], trigger=trigger)
    assert may_match(b, incident("service_down"))
    assert not may_match(b, incident("disk_full"))
    assert select([b], incident("service_down")) is None
    assert select([b], incident("service_down"), cause="bad_release") is b


def test_select_matches_trigger_on_facts_and_cause() -> None:
    books = load_dir(ROOT / "playbooks")
    assert select(books, incident()).name == "service-down"
    assert select(books, incident("service_unhealthy"), cause="bad_release").name == "bad-release"
    assert select(books, incident("nothing_known")) is None


def test_destructive_needs_approval_and_low_confidence_too() -> None:
    books = load_dir(ROOT / "playbooks")
    assert books["db-corrupt"].needs_approval()  # auto + destructive (db.restore)
    assert not books["bad-release"].needs_approval()  # a rollback is reversible: no person
    assert not books["service-down"].needs_approval(confidence=1.0)
    low = book(
        [{"id": "a", "action": "ssh.restart"}],
        trigger={"matchers": ['symptom="x"'], "min_confidence": 0.8},
    )
    assert low.needs_approval(confidence=0.5) and not low.needs_approval(confidence=0.9)


# --- bad playbooks: the exact messages, file:line: field -------------------------------------


@pytest.mark.parametrize("path", sorted((FIXTURES / "bad").glob("*.yaml")), ids=lambda p: p.stem)
def test_bad_playbook_message(path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_playbook(path)
    messages = [str(e) for e in getattr(caught.value, "errors", [caught.value])]
    rel = [m.replace(str(FIXTURES) + "/", "") for m in messages]
    assert rel == path.with_suffix(".err").read_text().splitlines()


def test_good_fixtures_load() -> None:
    assert sorted(load_dir(FIXTURES / "good")) == ["nested", "rollout"]


# --- templating ------------------------------------------------------------------------------


def test_unknown_template_name_names_the_step() -> None:
    b = book(
        [
            {
                "id": "tidy",
                "action": "disk.clean",
                "with": {"path": "{{ host.labels.nope }}", "older_than": "1d"},
            }
        ]
    )
    with pytest.raises(Exception, match=r"step 'tidy': unknown name 'host\.labels\.nope'"):
        plan(b, ctx(FakeExecutor()))


def test_template_value_stays_one_argv_token() -> None:
    nasty = "/var/log/app/x; rm -rf /"
    b = book(
        [
            {
                "id": "c",
                "action": "disk.clean",
                "with": {"path": "{{ incident.labels.path }}", "older_than": "1d"},
            }
        ],
        trigger={"matchers": ['symptom="x"', 'path=~".+"']},  # promises the label
    )
    executor = FakeExecutor()
    assert run(b, ctx(executor, incident(path=nasty))).status == "resolved"
    argv = executor.calls[0][1]
    assert nasty in argv and all(nasty not in t for t in argv[:4])


# --- engine ----------------------------------------------------------------------------------


def test_transient_error_is_retried_with_backoff() -> None:
    clock = Clock()
    ex = FakeExecutor(ConnectTimeout("web-1", "slow"), ConnectTimeout("web-1", "slow"), 0)
    b = book([{"id": "r", "action": "ssh.restart", "retries": 3, "retry_delay": "2s"}])
    result = run(b, ctx(ex, clock=clock), Hooks(rng=random.Random(1)))
    assert result.status == "resolved" and result.steps[0].attempts == 3
    assert len(clock.slept) == 2
    assert 1.0 <= clock.slept[0] <= 2.0 and 2.0 <= clock.slept[1] <= 4.0  # doubling, jittered


def test_permanent_error_is_never_retried() -> None:
    clock = Clock()
    ex = FakeExecutor(UnitNotFound("web-1", "no such unit"), 0)
    b = book([{"id": "r", "action": "ssh.restart", "retries": 3}])
    result = run(b, ctx(ex, clock=clock))
    assert result.status == "failed" and len(ex.calls) == 1 and clock.slept == []
    assert result.steps[0].attempts == 1


def test_retry_on_never_and_listed_delays() -> None:
    ex = FakeExecutor(ConnectTimeout("web-1", "x"))
    b = book([{"id": "r", "action": "ssh.restart", "retries": 3, "retry_on": "never"}])
    assert run(b, ctx(ex)).status == "failed" and len(ex.calls) == 1
    step = book(
        [{"id": "r", "action": "wait", "with": {"duration": 1}, "retry_delay": ["1s", "5s"]}]
    ).steps[0]
    assert [step.delay(i) for i in range(3)] == [1.0, 5.0, 5.0]


def test_failure_compensates_newest_first_then_on_failure() -> None:
    ex = FakeExecutor(0, 0, 1)  # stop ok, stop ok, restart fails (exit 1)
    comp = lambda svc: {"id": f"undo-{svc}", "action": "ssh.start", "with": {"service": svc}}  # noqa: E731
    b = book(
        [
            {"id": "stop-api", "action": "ssh.stop", "compensate": comp("api")},
            {
                "id": "stop-cache",
                "action": "ssh.stop",
                "with": {"service": "cache"},
                "compensate": comp("cache"),
            },
            {"id": "restart", "action": "ssh.restart"},
        ],
        on_failure=[{"id": "tell", "action": "notify", "with": {"message": "failed"}}],
    )
    told: list[str] = []
    result = run(b, ctx(ex, notify=told.append))
    assert result.status == "failed"
    assert [s.id for s in result.steps] == [
        "stop-api",
        "stop-cache",
        "restart",
        "undo-cache",
        "undo-api",
        "tell",
    ]
    assert [argv for _, argv in ex.calls[3:]] == [
        ["systemctl", "start", "redis"],
        ["supervisorctl", "start", "api"],
    ]
    assert told == ["failed"]


def test_verify_failure_is_unresolved() -> None:
    b = book(
        [{"id": "r", "action": "ssh.restart"}],
        verify=[{"id": "v", "action": "symptom.cleared", "with": {"within": "2s"}}],
    )
    clock = Clock()
    result = run(b, ctx(FakeExecutor(), clock=clock))
    assert result.status == "unresolved" and "symptom is still there" in result.error
    assert sum(clock.slept) <= 2.0 and clock.slept  # polled on the fake clock, bounded


def test_destructive_step_asks_once_and_rejection_stops_before_it() -> None:
    asked: list[str] = []
    b = book(
        [
            {"id": "tell", "action": "notify", "with": {"message": "m"}},
            {"id": "reboot", "action": "host.reboot"},
        ]
    )
    result = run(
        b,
        ctx(FakeExecutor(), notify=lambda m: None),
        Hooks(approve=lambda step, p: asked.append(step.id) or False),
    )
    assert result.status == "rejected" and asked == ["reboot"]
    assert [s.id for s in result.steps] == ["tell"]


def test_a_fault_cleared_while_asking_skips_the_rest_and_is_verified() -> None:
    """The approval wait ended because the symptom cleared: the asked-for step and those after it
    never run, the verify steps decide, and a pass resolves (no rejection, no escalation)."""
    from lazarus.errors import ClearedMeanwhile

    def cleared(step: StepBase, planned: object) -> bool:
        raise ClearedMeanwhile(f"step {step.id!r} not run: the symptom cleared")

    executor = FakeExecutor()
    b = book(
        [
            {"id": "reboot", "action": "host.reboot"},
            {"id": "tell", "action": "notify", "with": {"message": "m"}},
        ],
        verify=[{"id": "v", "action": "symptom.cleared", "with": {"within": "2s"}}],
    )
    told: list[str] = []
    host_down = incident("host_down", service="")  # its probe: SSH answers (the fake's does)
    result = run(b, ctx(executor, host_down, notify=told.append), Hooks(approve=cleared))
    assert result.status == "resolved", result.error
    assert [(s.block, s.id) for s in result.steps] == [("steps", "approval"), ("verify", "v")]
    assert "the symptom cleared" in result.steps[0].detail and told == []


def test_always_and_an_unsure_diagnosis_ask_before_the_first_step() -> None:
    steps = [{"id": "tell", "action": "notify", "with": {"message": "m"}}]
    for extra, confidence in (
        ({"approval": {"required": "always"}}, 1.0),
        ({"trigger": {"matchers": ['symptom="x"'], "min_confidence": 0.8}}, 0.5),
    ):
        asked: list[str] = []
        result = run(
            book(steps, **extra),
            ctx(FakeExecutor(), notify=lambda m: None),
            Hooks(
                approve=lambda step, p, asked=asked: asked.append(step.id) or False,
                confidence=confidence,
            ),
        )
        assert (result.status, asked, result.steps) == ("rejected", ["tell"], [])
    sure = run(book(steps), ctx(FakeExecutor(), notify=lambda m: None), Hooks(confidence=0.5))
    assert sure.status == "resolved"  # no min_confidence, nothing destructive: nobody asked


def test_ssh_run_rejects_unlisted_command_without_connecting() -> None:
    ex = FakeExecutor()
    b = book([{"id": "x", "action": "ssh.run", "with": {"argv": ["rm", "-rf", "/"]}}])
    result = run(b, ctx(ex))
    assert result.status == "failed" and "not in allow_commands" in result.error
    assert ex.calls == []
    ok = book([{"id": "x", "action": "ssh.run", "with": {"argv": ["df", "-h"]}}])
    assert run(ok, ctx(ex)).status == "resolved" and ex.calls == [("web-1", ["df", "-h"])]


def test_nested_playbook_is_depth_limited() -> None:
    loop = Playbook.model_validate(
        {
            "version": 1,
            "name": "loop",
            "trigger": {"matchers": ['symptom="x"']},
            "steps": [{"id": "again", "action": "run_playbook", "with": {"playbook": "loop"}}],
        }
    )
    result = run(loop, ctx(FakeExecutor()), Hooks(playbooks={"loop": loop}))
    assert result.status == "failed" and "nesting deeper than 3" in result.error


def test_dry_run_setting_runs_nothing() -> None:
    ex = FakeExecutor()
    c = ctx(ex)
    c.settings = PlaybookSettings(dry_run=True)
    assert run(book([{"id": "r", "action": "ssh.restart"}]), c).status == "dry_run"
    assert ex.calls == []


def test_audit_hook_sees_every_step() -> None:
    seen: list[tuple[str, bool]] = []
    ex = FakeExecutor(0, 1)
    b = book([{"id": "a", "action": "ssh.restart"}, {"id": "b", "action": "ssh.status"}])
    run(b, ctx(ex), Hooks(audit=lambda s, ok, d: seen.append((s.id, ok))))
    assert seen == [("a", True), ("b", False)]


# --- guards ----------------------------------------------------------------------------------


def test_breaker_counts_restarts_and_closes_after_window(tmp_path: Path) -> None:
    clock = Clock()
    guards = Guards(Store(tmp_path / "s.db"), clock)
    window, rate = RunWindow(max=3, within=3600), ErrorRate(max=1.0, min_runs=100)
    for _ in range(3):
        guards.take_act("api@web-1", "service-down", window, "ssh.restart")
    with pytest.raises(Throttled, match="breaker open for service-down on api@web-1: 3 restarts"):
        guards.start_run("api@web-1", "service-down", window, rate)
    with pytest.raises(Throttled):
        guards.take_act("api@web-1", "service-down", window, "ssh.restart")
    guards.take_act("api@web-2", "service-down", window, "ssh.restart")  # other target: own
    clock.now += 3601
    for _ in range(3):
        guards.take_act("api@web-1", "service-down", window, "ssh.restart")
    with pytest.raises(Throttled):
        guards.start_run("api@web-1", "service-down", window, rate)
    assert guards.reset_breaker("api@web-1", "service-down") == 6  # all counted, old or new
    guards.start_run("api@web-1", "service-down", window, rate)


def test_retries_inside_a_run_are_restarts_too(tmp_path: Path) -> None:
    """max 3 with a step retried twice: the first run restarts 3 times, the next none."""
    guards = Guards(Store(tmp_path / "s.db"), Clock())
    b = book(
        [{"id": "r", "action": "ssh.restart", "retries": 5, "retry_delay": "0s"}],
        limits={"per_target": {"max": 3, "within": "1h"}},
    )
    flaky = FakeExecutor(*[ConnectTimeout("web-1", "no answer")] * 6)
    result = run_guarded(guards, b, ctx(flaky))
    assert result.status == "failed" and "breaker open" in result.error
    assert len(flaky.calls) == 3
    with pytest.raises(Throttled, match="3 restarts"):
        run_guarded(guards, b, ctx(FakeExecutor()))


def test_error_rate_stops_automatic_runs(tmp_path: Path) -> None:
    guards = Guards(Store(tmp_path / "s.db"), Clock())
    window, rate = RunWindow(max=100, within=60), ErrorRate(max=0.5, within=3600, min_runs=4)
    for i, ok in enumerate([False, False, False, True]):
        guards.finish_run(guards.start_run(f"t{i}", "p", window, rate), ok)
    with pytest.raises(Throttled, match="3 of 4 runs failed"):
        guards.start_run("t9", "p", window, rate)


def test_fleet_cap_holds_under_ten_threads(tmp_path: Path) -> None:
    guards = Guards(Store(tmp_path / "s.db"))
    cap = PlaybookSettings(fleet_cap="30%").cap_for(10)
    inside, peak, throttled, lock = [0], [0], [0], threading.Lock()

    def remediate(host: str) -> None:
        for _ in range(20):
            try:
                with guards.fleet_lease("api", host, cap):
                    with lock:
                        inside[0] += 1
                        peak[0] = max(peak[0], inside[0])
                    time.sleep(0.002)
                    with lock:
                        inside[0] -= 1
            except Throttled:
                with lock:
                    throttled[0] += 1

    threads = [threading.Thread(target=remediate, args=(f"web-{i}",)) for i in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    print(f"fleet cap {cap}: peak {peak[0]} concurrent, {throttled[0]} leases refused")
    assert cap == 3 and 1 <= peak[0] <= 3 and throttled[0] > 0


def test_fleet_lease_released_on_failure(tmp_path: Path) -> None:
    guards = Guards(Store(tmp_path / "s.db"))
    with pytest.raises(RuntimeError), guards.fleet_lease("api", "web-1", 1):
        raise RuntimeError("step failed")
    with guards.fleet_lease("api", "web-2", 1):
        pass


def test_fleet_lease_waits_for_a_free_slot_then_gives_up(tmp_path: Path) -> None:
    clock = Clock()
    guards = Guards(Store(tmp_path / "s.db"), clock, clock.sleep)
    start = clock()
    with guards.fleet_lease("api", "web-1", 1):
        with pytest.raises(Throttled, match=r"waited 3s"), guards.fleet_lease("api", "web-2", 1, 3):
            pass
        assert 3 <= clock() - start <= 4  # it polled until the deadline, not forever
    with guards.fleet_lease("api", "web-2", 1, wait=3):  # released: taken at once
        pass


def test_a_stale_lease_of_a_crashed_run_is_dropped(tmp_path: Path) -> None:
    clock = Clock()
    guards = Guards(Store(tmp_path / "s.db"), clock, clock.sleep)
    with guards.store.transaction() as db:
        db.execute("INSERT INTO fleet_leases (service, host, at) VALUES ('api', 'web-9', ?)",
                   (clock() - 2 * 3600,))  # fmt: skip
    with guards.fleet_lease("api", "web-1", 1):
        pass


def test_run_guarded_counts_outcomes_and_throttles(tmp_path: Path) -> None:
    store = Store(tmp_path / "s.db")
    guards = Guards(store, Clock())
    b = book(
        [{"id": "r", "action": "ssh.restart"}], limits={"per_target": {"max": 2, "within": "1h"}}
    )
    assert run_guarded(guards, b, ctx(FakeExecutor())).status == "resolved"
    assert run_guarded(guards, b, ctx(FakeExecutor(1))).status == "failed"
    with pytest.raises(Throttled, match="breaker open for t on api@web-1"):
        run_guarded(guards, b, ctx(FakeExecutor()))
    with store.transaction() as db:
        oks = [r[0] for r in db.execute("SELECT ok FROM playbook_runs ORDER BY rowid")]
        (leases,) = db.execute("SELECT COUNT(*) FROM fleet_leases").fetchone()
    assert oks == [1, 0] and leases == 0
    store.close()


def test_a_run_uses_the_process_warm_ssh_connections_without_the_watch_back_off(
    tmp_path: Path,
) -> None:
    """A recover run in the watch's process restarts over the connection the watch keeps warm
    (a handshake cost seconds under load), and dials a host the watch waits to redial."""
    from lazarus.playbooks.runs import run_context
    from lazarus.remote.pool import shared_executor

    config = Config.model_validate(
        {"inventory": {"ssh": {"key": "k"}, "hosts": [{"name": "web-1", "address": "10.0.0.1"}]}}
    )
    incident = Incident(1, "fp", "web-1", "api", "service_down", "critical",
                        IncidentState.OPEN, "down", {}, 0.0)  # fmt: skip
    warm = shared_executor(config.inventory.ssh, config.base_dir)
    with run_context(config, incident, notify=print) as first:
        assert first.executor is warm.inner
    with run_context(config, incident, notify=print) as second:
        assert second.executor is first.executor
