"""Watch cycles: one at a time per shard, numbered, whatever starts them."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from lazarus import cycles
from lazarus.cycles import Cycle, Skipped
from lazarus.store import Store


def _store(tmp_path: Path) -> Store:
    return Store(tmp_path / "state.db")


def test_a_cycle_due_while_another_runs_is_skipped(tmp_path: Path) -> None:
    store = _store(tmp_path)
    first = cycles.begin(store, "1/1", "a", min_gap=2.5, ttl=30, now=100.0)
    second = cycles.begin(store, "1/1", "b", min_gap=2.5, ttl=30, now=106.0)
    assert isinstance(first, Cycle) and first.number == 1
    assert isinstance(second, Skipped) and "cycle 1 still runs (a," in second.reason
    assert second.wait == 24.0  # when its lease lapses, unless renewed meanwhile
    cycles.finish(store, first, now=107.0)
    third = cycles.begin(store, "1/1", "b", min_gap=2.5, ttl=30, now=107.5)
    assert isinstance(third, Cycle) and third.number == 2


def test_two_starts_0_3_s_apart_are_one_cycle(tmp_path: Path) -> None:
    store = _store(tmp_path)
    first = cycles.begin(store, "1/1", "a", min_gap=2.5, ttl=30, now=100.0)
    assert isinstance(first, Cycle)
    cycles.finish(store, first, now=100.1)
    again = cycles.begin(store, "1/1", "b", min_gap=2.5, ttl=30, now=100.3)
    assert isinstance(again, Skipped) and abs(again.wait - 2.2) < 1e-9


def test_a_loop_on_another_machine_waits_a_whole_gap_more(tmp_path: Path) -> None:
    """Two serve loops on two machines, ticking at different phases, keep one cycle per
    interval between them (min_gap is half the interval): the standby's tick 2.6 s after the
    active one's cycle began is skipped; a tick from the active loop's machine is not."""
    store = _store(tmp_path)
    active, standby, sibling = "m1/7:10:aaaaaa", "m2/7:10:bbbbbb", "m1/7:11:cccccc"
    first = cycles.begin(store, "1/1", active, min_gap=2.5, ttl=30, now=100.0)
    assert isinstance(first, Cycle)
    cycles.finish(store, first, now=101.0)
    early = cycles.begin(store, "1/1", standby, min_gap=2.5, ttl=30, now=102.6)
    assert isinstance(early, Skipped) and abs(early.wait - 2.4) < 1e-9, early
    same = cycles.begin(store, "1/1", sibling, min_gap=2.5, ttl=30, now=102.6)
    assert isinstance(same, Cycle) and same.number == 2
    cycles.finish(store, same, now=103.0)
    later = cycles.begin(store, "1/1", standby, min_gap=2.5, ttl=30, now=107.6)
    assert isinstance(later, Cycle) and later.number == 3


def test_a_dead_holders_lease_expires_and_numbers_keep_growing(tmp_path: Path) -> None:
    store = _store(tmp_path)
    dead = cycles.begin(store, "1/1", "a", min_gap=2.5, ttl=30, now=100.0)
    assert isinstance(dead, Cycle)  # never finished: its process died
    assert isinstance(cycles.begin(store, "1/1", "b", min_gap=2.5, ttl=30, now=129.0), Skipped)
    taken = cycles.begin(store, "1/1", "b", min_gap=2.5, ttl=30, now=131.0)
    assert isinstance(taken, Cycle) and taken.number == 2
    assert not cycles.renew(store, Cycle("1/1", 1, "a", 100.0), 30, now=132.0)


def test_a_lease_lasts_an_interval_and_a_half_never_under_the_floor() -> None:
    """A standby that waits for the lapse replaces a dead holder within two intervals."""
    assert cycles.lease_ttl(5) == 7.5 and cycles.lease_ttl(60) == 90
    assert cycles.lease_ttl(1) == cycles.LEASE_FLOOR


def test_a_dead_holders_note_goes_to_its_successor_only(tmp_path: Path) -> None:
    """What a holder leaves (its Prefect slot's lease) reaches whoever takes over from it when
    it never finished; a finished cycle freed what it held itself."""
    store = _store(tmp_path)
    dead = cycles.begin(store, "1/1", "a", min_gap=2.5, ttl=7.5, now=100.0)
    assert isinstance(dead, Cycle) and dead.left == ""
    cycles.note(store, dead, "lease-1")
    taken = cycles.begin(store, "1/1", "b", min_gap=2.5, ttl=7.5, now=108.0)
    assert isinstance(taken, Cycle) and taken.left == "lease-1"
    cycles.note(store, taken, "lease-2")
    cycles.finish(store, taken, now=109.0)
    after = cycles.begin(store, "1/1", "a", min_gap=2.5, ttl=7.5, now=111.0)
    assert isinstance(after, Cycle) and after.left == ""


def test_shards_have_their_own_sequences(tmp_path: Path) -> None:
    store = _store(tmp_path)
    one = cycles.begin(store, "1/2", "a", min_gap=2.5, ttl=30, now=100.0)
    two = cycles.begin(store, "2/2", "a", min_gap=2.5, ttl=30, now=100.0)
    assert isinstance(one, Cycle) and isinstance(two, Cycle)
    assert (one.number, two.number) == (1, 1)


def test_hold_renews_while_running_and_finishes(tmp_path: Path) -> None:
    store = _store(tmp_path)
    with cycles.hold(store, "1/1", "a", min_gap=0.0, ttl=0.3) as got:
        assert isinstance(got, Cycle)
        threading.Event().wait(0.5)  # longer than the lease: the renewer keeps it
        assert isinstance(cycles.begin(store, "1/1", "b", min_gap=0.0, ttl=0.3), Skipped)
    (record,) = cycles.history(store, "1/1")
    assert record.finished is not None and record.holder == "a"
    with cycles.hold(store, "1/1", "b", min_gap=0.0, ttl=0.3) as got:
        assert isinstance(got, Cycle) and got.number == 2


def test_a_busy_store_skips_one_renewal_and_the_lease_is_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A renewal that meets a locked store is tried again next tick; the renewer never dies
    of it (it used to, and the lease then expired under a cycle still running)."""
    store = _store(tmp_path)
    real_renew, calls = cycles.renew, []

    def flaky_renew(*args: object, **kwargs: object) -> bool:
        calls.append(1)
        if len(calls) == 1:
            raise sqlite3.OperationalError("database is locked")
        return real_renew(*args, **kwargs)

    monkeypatch.setattr(cycles, "renew", flaky_renew)
    with cycles.hold(store, "1/1", "a", min_gap=0.0, ttl=0.3) as got:
        assert isinstance(got, Cycle)
        threading.Event().wait(0.8)  # past the lease: only renewals after the failure keep it
        assert len(calls) >= 3
        assert isinstance(cycles.begin(store, "1/1", "b", min_gap=0.0, ttl=0.3), Skipped)
    (record,) = cycles.history(store, "1/1")
    assert record.finished is not None and record.holder == "a"


def test_a_cycle_that_raised_is_released_not_finished(tmp_path: Path) -> None:
    """Ctrl-C or a crash mid-cycle: its stages did not all run, so it never reads as finished
    (a streak counts finished cycles), and the next starter need not wait for its lease."""
    store = _store(tmp_path)
    try:
        with cycles.hold(store, "1/1", "a", min_gap=0.0, ttl=30) as got:
            assert isinstance(got, Cycle)
            raise KeyboardInterrupt
    except KeyboardInterrupt:
        pass
    (record,) = cycles.history(store, "1/1")
    assert record.finished is None
    with cycles.hold(store, "1/1", "b", min_gap=0.0, ttl=30) as got:
        assert isinstance(got, Cycle) and got.number == 2


def test_many_threads_never_overlap(tmp_path: Path) -> None:
    store = _store(tmp_path)
    running, overlaps, granted = [0], [0], []
    guard = threading.Lock()

    def starter(name: str) -> None:
        for _ in range(20):
            with cycles.hold(store, "1/1", name, min_gap=0.0, ttl=5) as got:
                if isinstance(got, Cycle):
                    with guard:
                        running[0] += 1
                        overlaps[0] += running[0] > 1
                        granted.append(got.number)
                    threading.Event().wait(0.002)
                    with guard:
                        running[0] -= 1

    threads = [threading.Thread(target=starter, args=(f"s{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert overlaps[0] == 0
    assert granted == list(range(1, len(granted) + 1))


def test_a_holder_process_gone_from_this_machine_is_taken_over_at_once(tmp_path: Path) -> None:
    """kill -9 of `lazarus serve`, then a restart: its cycle's lease is not waited out."""
    import subprocess
    import sys

    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()  # a process id that no longer runs (reaped)
    machine = cycles.holder_id().rsplit(":", 2)[0]
    store = _store(tmp_path)
    dead = f"{machine}:{child.pid}:abcdef"
    alive = cycles.holder_id()
    elsewhere = f"other-host/1:{child.pid}:abcdef"
    assert cycles.gone(dead) and not cycles.gone(alive) and not cycles.gone(elsewhere)
    assert not cycles.gone("a") and not cycles.gone(f"{machine.split('/')[0]}:{child.pid}:ab")
    for holder, expect in ((alive, Skipped), (elsewhere, Skipped), (dead, Cycle)):
        cycles.begin(store, holder, holder, min_gap=2.5, ttl=30, now=100.0)
        assert isinstance(cycles.begin(store, holder, "b", min_gap=2.5, ttl=30, now=101.0), expect)


def test_a_holder_replaced_while_it_stalled_stops_at_its_next_stage(tmp_path: Path) -> None:
    """A lease that lapsed under a live holder (its renewals stalled) and was taken: the holder
    learns at its next renewal, and its cycle stops before it acts again."""
    import time

    store = _store(tmp_path)
    lost = pytest.raises(cycles.LeaseLost, match="cycle 1 of 1/1 lost its lease")
    with lost, cycles.hold(store, "1/1", "a", min_gap=0.0, ttl=0.3) as got:
        assert isinstance(got, Cycle)
        got.check()  # still ours
        later = cycles.begin(store, "1/1", "b", min_gap=0.0, ttl=30, now=time.time() + 1)
        assert isinstance(later, Cycle) and later.number == 2  # b saw it lapsed
        assert got.lost.wait(2)
        got.check()
    assert [c.holder for c in cycles.history(store, "1/1")] == ["a", "b"]


def test_renewals_failing_for_a_whole_lease_mark_the_cycle_lost(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = _store(tmp_path)

    def down(*args: object, **kwargs: object) -> bool:
        raise sqlite3.OperationalError("unable to open database file")

    monkeypatch.setattr(cycles, "renew", down)
    with cycles.hold(store, "1/1", "a", min_gap=0.0, ttl=0.3) as got:
        assert isinstance(got, Cycle)
        assert got.lost.wait(2)
        with pytest.raises(cycles.LeaseLost):
            got.check()
