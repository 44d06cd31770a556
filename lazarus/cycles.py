"""Watch cycles: numbered, and one at a time per shard, whatever starts them.

A cycle is granted by the store, in one write transaction, so two starters (``lazarus serve``,
a deployment's run, a person's ``lazarus watch``), in one process or many, never overlap:
* a cycle due while another holds an unexpired lease is skipped ("still running");
* a cycle due less than ``min_gap`` after the last one began is skipped ("just ran"), so two
  starts 0.3 s apart are one cycle, and a for-N streak counts cycles, never runs.
The holder renews its lease while it runs; a holder that died stops renewing and its lease
expires, so the next starter takes over; a holder that was a process on this machine and is
gone (``kill -9`` of ``lazarus serve``, then a restart) is known dead at once, without the wait.
A lease lasts 1.5 intervals (``lease_ttl``): a starter told "still runs" learns when it lapses
(``Skipped.wait``) and tries again then, so a watch whose machine died is replaced within two
intervals. A holder may leave a note for whoever takes over from it (``note``: its Prefect slot's
lease, so the successor frees that slot instead of waiting out Prefect's minute).
A holder that could not renew in time (a stalled machine, a store it cannot reach) may have been
replaced: its cycle stops at its next stage (``Cycle.check`` raises ``LeaseLost``), so two
cycles of a shard never act at once. A cycle that raised (a crash, Ctrl-C) is released, not
finished: ``finished`` means its stages
all ran, so its streaks moved. Cycle numbers only grow. The SQL is plain, so the table moves
to PostgreSQL with the rest of the store.
"""

from __future__ import annotations

import logging
import os
import socket
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from lazarus.errors import LazarusError
from lazarus.store import Store

log = logging.getLogger(__name__)

KEEP = 2000  # cycles of history kept per shard: a few hours at a 5 s interval
# The shortest lease, for short intervals: renewed every third of it, at most one store write
# per 2 s per shard, and a holder whose renewals stall for 4 s (a loaded machine, a slow store)
# still keeps its shard.
LEASE_FLOOR = 6.0


def lease_ttl(interval: float) -> float:
    """How long a cycle's lease lasts unrenewed: 1.5 intervals (never under ``LEASE_FLOOR``).
    Renewed every third of it, a live holder keeps a whole interval of slack; a dead one's
    shard is taken when it lapses, by a starter that waits for exactly that: within two
    intervals of the death."""
    return max(LEASE_FLOOR, 1.5 * interval)


class LeaseLost(LazarusError):
    """This cycle's lease lapsed unrenewed: another watch may have the shard now."""


@dataclass(frozen=True)
class Cycle:
    """A granted cycle: its number in the shard's sequence, who holds it, when it began, and
    the note a predecessor that never finished left (``note``), for its successor to clean up.
    ``lost`` is set once its lease may be another's (``hold``)."""

    shard: str
    number: int
    holder: str
    started: float
    left: str = ""
    lost: threading.Event = field(default_factory=threading.Event, compare=False, repr=False)

    def check(self) -> None:
        """Raise ``LeaseLost`` when the lease may be another's: call it before a stage acts."""
        if self.lost.is_set():
            raise LeaseLost(f"cycle {self.number} of {self.shard} lost its lease: it stops here")


@dataclass(frozen=True)
class Skipped:
    """A cycle that was due but not granted, why (for the log), and in how many seconds one
    may begin: the last began too recently, or another's lease lapses then unless renewed."""

    reason: str
    wait: float = 0.0


@dataclass(frozen=True)
class CycleRecord:
    shard: str
    number: int
    holder: str
    started: float
    expires: float
    finished: float | None


def holder_id() -> str:
    """Who holds a lease: machine, process and a random part (two loops in one process differ).
    The machine is its host name and process namespace: a process id means one process there."""
    return f"{_machine()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


def _machine() -> str:
    try:
        return f"{socket.gethostname()}/{os.stat('/proc/self/ns/pid').st_ino}"
    except OSError:  # no /proc: no namespace to tell, so no holder is ever known dead here
        return socket.gethostname()


def _parts(holder: str) -> list[str]:
    """``holder_id()``'s machine, process and random part (a holder may add a space and more);
    fewer than three parts for a holder named otherwise."""
    parts = holder.split(" ", 1)[0].rsplit(":", 2)
    return parts if len(parts) == 3 and "/" in parts[0] else []


def elsewhere(holder: str, other: str) -> bool:
    """Whether two holders are known to run on two machines (or process namespaces)."""
    mine, theirs = _parts(holder), _parts(other)
    return bool(mine and theirs) and mine[0] != theirs[0]


def gone(holder: str) -> bool:
    """Whether ``holder`` (``holder_id()``, maybe followed by a space and more) was a process
    of this machine that no longer runs."""
    parts = _parts(holder)
    if not parts or parts[0] != _machine() or not parts[1].isdigit():
        return False
    try:
        os.kill(int(parts[1]), 0)
    except ProcessLookupError:
        return True
    except OSError:  # alive, another user's
        return False
    return False


def begin(
    store: Store, shard: str, holder: str, *, min_gap: float, ttl: float, now: float | None = None
) -> Cycle | Skipped:
    """Take the next cycle of ``shard`` for ``holder``, or say why not.

    A cycle begins ``min_gap`` after the last began, or twice that when the last one's holder
    runs on another machine: two loops on two machines (a standby ``lazarus serve``) each
    ticking on the interval would otherwise interleave their cycles at twice its rate, and
    ``probe_failures`` would count failures twice as fast. One machine's loop, or a worker's
    runs, keep the shorter gap for a late tick."""
    now = time.time() if now is None else now
    with store.transaction() as db:
        last = db.execute(
            "SELECT cycle, holder, started, expires, finished, note FROM watch_cycles"
            " WHERE shard = ? ORDER BY cycle DESC LIMIT 1",
            (shard,),
        ).fetchone()
        number, left = 1, ""
        if last is not None:
            number = last["cycle"] + 1
            dead = last["finished"] is None and gone(last["holder"])
            if last["finished"] is None and last["expires"] > now and not dead:
                return Skipped(
                    f"cycle {last['cycle']} still runs ({last['holder']},"
                    f" began {now - last['started']:.1f}s ago)",
                    wait=last["expires"] - now,
                )
            gap = 2 * min_gap if elsewhere(last["holder"], holder) else min_gap
            if now - last["started"] < gap and not dead:
                return Skipped(
                    f"cycle {last['cycle']} began {now - last['started']:.1f}s ago"
                    f" (less than {gap:g}s)",
                    wait=last["started"] + gap - now,
                )
            if last["finished"] is None:
                left = last["note"] or ""
                log.warning(
                    "cycle %d of %s by %s never finished (it failed or its holder died)",
                    last["cycle"],
                    shard,
                    last["holder"],
                )
        db.execute(
            "INSERT INTO watch_cycles (shard, cycle, holder, started, expires)"
            " VALUES (?, ?, ?, ?, ?)",
            (shard, number, holder, now, now + ttl),
        )
        db.execute(
            "DELETE FROM watch_cycles WHERE shard = ? AND cycle <= ?", (shard, number - KEEP)
        )
    return Cycle(shard, number, holder, now, left)


def note(store: Store, cycle: Cycle, text: str) -> None:
    """Leave ``text`` on the cycle for a successor, should this one never finish."""
    with store.transaction() as db:
        db.execute(
            "UPDATE watch_cycles SET note = ? WHERE shard = ? AND cycle = ? AND holder = ?",
            (text, cycle.shard, cycle.number, cycle.holder),
        )


def renew(store: Store, cycle: Cycle, ttl: float, now: float | None = None) -> bool:
    """Extend the lease; False when it is no longer ours (it expired and was taken over)."""
    now = time.time() if now is None else now
    with store.transaction() as db:
        changed = db.execute(
            "UPDATE watch_cycles SET expires = ? WHERE shard = ? AND cycle = ? AND holder = ?"
            " AND finished IS NULL AND NOT EXISTS"
            " (SELECT 1 FROM watch_cycles AS later WHERE later.shard = ? AND later.cycle > ?)",
            (now + ttl, cycle.shard, cycle.number, cycle.holder, cycle.shard, cycle.number),
        ).rowcount
    return changed == 1


def finish(store: Store, cycle: Cycle, now: float | None = None) -> None:
    now = time.time() if now is None else now
    with store.transaction() as db:
        db.execute(
            "UPDATE watch_cycles SET finished = ? WHERE shard = ? AND cycle = ? AND holder = ?",
            (now, cycle.shard, cycle.number, cycle.holder),
        )


def release(store: Store, cycle: Cycle, now: float | None = None) -> None:
    """End the lease of a cycle that did not complete (``finished`` stays empty): the next
    starter need not wait for it to expire."""
    now = time.time() if now is None else now
    with store.transaction() as db:
        db.execute(
            "UPDATE watch_cycles SET expires = ? WHERE shard = ? AND cycle = ? AND holder = ?"
            " AND finished IS NULL",
            (now, cycle.shard, cycle.number, cycle.holder),
        )


def history(store: Store, shard: str) -> list[CycleRecord]:
    """The shard's recent cycles, oldest first."""
    with store.transaction() as db:
        found = db.execute(
            "SELECT shard, cycle, holder, started, expires, finished FROM watch_cycles"
            " WHERE shard = ? ORDER BY cycle",
            (shard,),
        ).fetchall()
    return [CycleRecord(r[0], r[1], r[2], r[3], r[4], r[5]) for r in found]


@contextmanager
def hold(
    store: Store,
    shard: str,
    holder: str,
    *,
    min_gap: float,
    ttl: float,
    clock: Callable[[], float] = time.time,
) -> Iterator[Cycle | Skipped]:
    """Take a cycle and keep its lease alive (renewed every ``ttl / 3``) until the block ends:
    finished when the block completes, released when it raises. Once a renewal finds the lease
    taken, or none succeeded for ``ttl`` (by this machine's clock, from the last that did), the
    cycle is marked lost (``Cycle.check``)."""
    got = begin(store, shard, holder, min_gap=min_gap, ttl=ttl, now=clock())
    if isinstance(got, Skipped):
        yield got
        return
    done = threading.Event()

    def keep_alive() -> None:
        renewed = time.monotonic()
        while not done.wait(ttl / 3):
            try:
                held = renew(store, got, ttl, clock())
            except (sqlite3.Error, LazarusError) as exc:  # a busy or absent store: next tick
                log.warning(
                    "could not renew the lease of cycle %d of %s: %s", got.number, shard, exc
                )
                held = time.monotonic() - renewed < ttl
            else:
                renewed = time.monotonic() if held else renewed
            if not held:
                got.lost.set()
                log.error("lost the lease of cycle %d of %s", got.number, shard)
                return

    renewer = threading.Thread(target=keep_alive, name=f"lease-{shard}", daemon=True)
    renewer.start()
    try:
        yield got
    except BaseException:
        done.set()
        renewer.join()
        release(store, got, clock())
        raise
    done.set()
    renewer.join()
    finish(store, got, clock())
