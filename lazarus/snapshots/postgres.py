"""PostgreSQL: whole-database snapshots, restores that lose nothing, ending stuck transactions.

The only module that imports psycopg. A restore never touches the live database until the
snapshot has been verified, a safety snapshot of the current state taken, and the data restored
into a scratch database and checked; only then are the databases swapped by rename, and the old
one is kept (``<db>__pre_restore_<ts>``). Any failure puts the names back and says so.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Literal

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

from lazarus.config import Database
from lazarus.errors import ActionError, LazarusError, VerifyFailed
from lazarus.secrets import Secret, resolve
from lazarus.snapshots import files, stuck
from lazarus.snapshots._tools import LIBPQ_ENV, PG_BIN, excerpt, run
from lazarus.snapshots.files import RestoreReport, Snapshot
from lazarus.snapshots.stuck import EndedBackend

CONNECT_TIMEOUT = 10
_RENAME_ATTEMPTS = 50
_IDENT_MAX = 63


class _Server:
    """How to reach one database, from its DSN; holds the password but never shows it."""

    def __init__(self, dsn: str | Secret, name: str, step: str):
        secret = dsn if isinstance(dsn, Secret) else resolve(dsn)
        self.step = step
        try:
            self._params: dict[str, Any] = conninfo_to_dict(secret.reveal())
        except psycopg.Error:
            raise ActionError(step, f"the DSN of {name} is not a libpq connection string") from None
        unknown = sorted(set(self._params) - set(LIBPQ_ENV))
        if unknown:
            raise ActionError(
                step,
                f"the DSN of {name} has parameters the pg tools cannot "
                f"take from the environment: {', '.join(unknown)}",
            )
        if not self._params.get("dbname"):
            raise ActionError(step, f"the DSN of {name} names no database (dbname)")
        self.dbname: str = self._params["dbname"]
        self.hide = [str(self._params.get("password", ""))]

    def __repr__(self) -> str:
        return f"_Server(dbname={self.dbname!r})"

    def env(self, dbname: str | None = None) -> dict[str, str]:
        """Connection settings for a pg tool, as environment variables (never argv)."""
        env = {LIBPQ_ENV[k]: str(v) for k, v in self._params.items()}
        env["PGDATABASE"] = dbname or self.dbname
        env.setdefault("PGCONNECT_TIMEOUT", str(CONNECT_TIMEOUT))
        return env

    def connect(
        self, dbname: str | None = None, *, timeout: float | None = None
    ) -> psycopg.Connection:
        """An autocommit connection; ``timeout`` bounds every statement on it."""
        params = {**self._params, "dbname": dbname or self.dbname}
        params.setdefault("connect_timeout", CONNECT_TIMEOUT)
        if timeout:
            limit = f"-c statement_timeout={int(timeout * 1000)}"
            params["options"] = f"{params.get('options', '')} {limit}".strip()
        try:
            return psycopg.connect(autocommit=True, **params)
        except psycopg.Error as exc:
            raise ActionError(
                self.step, f"cannot connect to database {params['dbname']!r}: {self.scrub(exc)}"
            ) from None

    def tool(
        self, name: str, *args: str, step: str, timeout: float, dbname: str | None = None
    ) -> str:
        """Run a pg tool against this server (connection in the environment, never in argv)."""
        return run(
            [str(PG_BIN / name), "--no-password", *args],
            step=step,
            timeout=timeout,
            env=self.env(dbname),
            hide=self.hide,
        )

    def scrub(self, exc: BaseException) -> str:
        return excerpt(str(exc), self.hide)


def _row_counts(conn: psycopg.Connection, tables: list[str]) -> dict[str, int | None]:
    """Rows per table (``schema.table`` allowed); None for a table that does not exist."""
    counts: dict[str, int | None] = {}
    for table in tables:
        query = sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(*table.split(".")))
        try:
            with conn.transaction():  # a savepoint: a missing table leaves the rest usable
                counts[table] = conn.execute(query).fetchone()[0]
        except (psycopg.errors.UndefinedTable, psycopg.errors.InvalidSchemaName):
            counts[table] = None
    return counts


def snapshot(
    db: Database,
    snapshot_dir: Path,
    *,
    reason: Literal["scheduled", "safety"] = "scheduled",
    timeout: float = 3600.0,
) -> Snapshot:
    """``pg_dump -Fc`` of the whole database; the row counts and the dump see the same data."""
    server = _Server(db.dsn, db.name, "db.snapshot")
    path = files.new_path(snapshot_dir, db.name, ".dump")
    partial = files.partial_of(path)
    try:
        with server.connect(timeout=timeout) as conn, conn.transaction():
            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            exported = conn.execute("SELECT pg_export_snapshot()").fetchone()[0]
            counts = _row_counts(conn, db.tables)
            version = conn.execute("SHOW server_version").fetchone()[0]
            dump = ["-Fc", f"--snapshot={exported}", "-f", str(partial)]
            server.tool("pg_dump", *dump, step="db.snapshot", timeout=timeout)
    except psycopg.Error as exc:
        files.discard(partial)
        raise ActionError("db.snapshot", f"{db.name}: {server.scrub(exc)}") from None
    except BaseException:
        files.discard(partial)
        raise
    meta = {"server_version": version, "row_counts": counts, "reason": reason}
    return files.publish(partial, path, database=db.name, kind="postgres", **meta)


def verify(snap: Snapshot | Path, *, timeout: float = 600.0) -> Snapshot:
    """Refuse a snapshot unless its sha256 matches and ``pg_restore --list`` can read it."""
    snap = files.load(snap)
    if snap.kind != "postgres":
        raise ActionError("db.verify", f"snapshot {snap.path} is a {snap.kind} snapshot")
    files.check_digest(snap)
    run([str(PG_BIN / "pg_restore"), "--list", str(snap.path)], step="db.verify", timeout=timeout)
    return snap


def restore(
    db: Database,
    snap: Snapshot | Path,
    *,
    safety_dir: Path | None = None,
    maintenance_db: str = "postgres",
    timeout: float = 3600.0,
) -> RestoreReport:
    """Replace the whole database with ``snap``, losing nothing (see the module docstring).

    Raises ActionError (a step failed) or VerifyFailed (the restored data failed its check);
    either way the message says where the original data is: in place, or kept by name.
    """
    started = time.monotonic()
    server = _Server(db.dsn, db.name, "db.restore")
    try:
        snap = verify(snap, timeout=timeout)
    except ActionError as exc:
        raise _untouched(db, f"snapshot refused ({exc})") from exc
    steps = [f"verified {snap.path.name} (sha256, pg_restore --list)"]
    try:
        safety = snapshot(db, safety_dir or snap.path.parent, reason="safety", timeout=timeout)
    except LazarusError as exc:
        raise _untouched(db, f"safety snapshot failed ({exc})") from exc
    steps.append(f"safety snapshot {safety.path.name}")
    try:
        swap = _Swap(server, maintenance_db, timeout)
    except ActionError as exc:
        raise _untouched(db, str(exc)) from exc
    stage = f"creating scratch database {swap.scratch!r}"
    try:
        swap.create_scratch()
        steps.append(f"created {swap.scratch}")
        stage = f"restoring into {swap.scratch!r}"
        into = ["--no-owner", "--exit-on-error", "-d", swap.scratch, str(snap.path)]
        server.tool("pg_restore", *into, step="db.restore", timeout=timeout, dbname=swap.scratch)
        steps.append(f"pg_restore into {swap.scratch}")
        stage = f"checking {swap.scratch!r}"
        _check(server, db, swap.scratch, timeout)
        steps.append(f"checked {swap.scratch}")
        stage = f"swapping {swap.scratch!r} in for {swap.target!r}"
        swap.swap()
        steps.append(f"renamed {swap.target} -> {swap.aside}, {swap.scratch} -> {swap.target}")
        stage = f"re-checking {swap.target!r} after the swap"
        after = _check(server, db, swap.target, timeout)
        steps.append(f"re-checked {swap.target}")
    except (LazarusError, psycopg.Error) as exc:
        raise _failed(db, stage, exc, swap, safety) from exc
    finally:
        swap.close()
    return RestoreReport(
        database=db.name,
        snapshot=snap.path,
        safety_snapshot=safety.path,
        steps=steps,
        row_counts_before=safety.row_counts,
        row_counts_after=after,
        kept_as=swap.aside,
        seconds=round(time.monotonic() - started, 3),
    )


def _untouched(db: Database, reason: str) -> ActionError:
    return ActionError(
        "db.restore", f"{db.name}: {reason}; nothing was changed, the original data is intact"
    )


def _check(server: _Server, db: Database, dbname: str, timeout: float) -> dict[str, int | None]:
    """Row counts of the configured tables, after requiring them non-empty and the check true."""
    with server.connect(dbname, timeout=timeout) as conn:
        counts = _row_counts(conn, db.tables)
        answer = None
        if db.check is not None:
            try:
                answer = conn.execute(db.check).fetchone()  # type: ignore[arg-type]
            except psycopg.Error as exc:
                raise VerifyFailed(
                    f"database {dbname!r}: check {db.check!r} failed: {server.scrub(exc)}"
                ) from None
    files.require_sane(f"database {dbname!r}", counts, db.check, answer)
    return counts


def _failed(
    db: Database, stage: str, exc: BaseException, swap: _Swap, safety: Snapshot
) -> LazarusError:
    """The error a failed restore raises, after putting the databases back as they were."""
    reason = swap.server.scrub(exc) if isinstance(exc, psycopg.Error) else str(exc)
    undone = swap.undo()
    where = (
        f"the original data is intact in database {swap.target!r}"
        if not swap.moved_aside
        else f"the original data is kept in database {swap.aside!r}"
    )
    message = (
        f"{db.name}: restore failed while {stage}: {reason}; put back: "
        f"{'; '.join(undone) or 'nothing to undo'}; {where} and in the safety "
        f"snapshot {safety.path}"
    )
    if isinstance(exc, VerifyFailed):
        return VerifyFailed(message)
    return ActionError("db.restore", message)


class _Swap:
    """The scratch database and the renames of one restore, and how to undo each of them."""

    def __init__(self, server: _Server, maintenance_db: str, timeout: float):
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        self.server, self.target = server, server.dbname
        self.scratch = _derived(self.target, "__restore_", stamp)
        self.aside = _derived(self.target, "__pre_restore_", stamp)
        self.created = self.moved_aside = self.swapped = False
        self.admin = server.connect(maintenance_db, timeout=timeout)

    def create_scratch(self) -> None:
        """An empty database with the target's owner, encoding and locale."""
        row = self.admin.execute(
            "SELECT pg_get_userbyid(datdba), pg_encoding_to_char(encoding), datcollate, datctype"
            " FROM pg_database WHERE datname = %s",
            [self.target],
        ).fetchone()
        if row is None:
            raise ActionError("db.restore", f"database {self.target!r} does not exist")
        owner, encoding, collate, ctype = row
        self.admin.execute(
            sql.SQL(
                "CREATE DATABASE {} OWNER {} TEMPLATE template0"
                " ENCODING {} LC_COLLATE {} LC_CTYPE {}"
            ).format(
                sql.Identifier(self.scratch),
                sql.Identifier(owner),
                sql.Literal(encoding),
                sql.Literal(collate),
                sql.Literal(ctype),
            )
        )
        self.created = True

    def swap(self) -> None:
        self._rename(self.target, self.aside)
        self.moved_aside = True
        self._rename(self.scratch, self.target)
        self.swapped = True

    def undo(self) -> list[str]:
        """Put the original database back under its name and drop the scratch; say what was done."""
        done = []
        steps = [
            (
                "swapped",
                f"renamed the restored {self.target} back to {self.scratch}",
                lambda: self._rename(self.target, self.scratch),
            ),
            (
                "moved_aside",
                f"renamed {self.aside} back to {self.target}",
                lambda: self._rename(self.aside, self.target),
            ),
            ("created", f"dropped {self.scratch}", self._drop_scratch),
        ]
        for flag, what, action in steps:
            if not getattr(self, flag):
                continue
            try:
                action()
            except (LazarusError, psycopg.Error) as exc:
                reason = self.server.scrub(exc) if isinstance(exc, psycopg.Error) else str(exc)
                done.append(f"FAILED to undo ({what}): {reason}")
                break  # later steps depend on this one
            setattr(self, flag, False)
            done.append(what)
        return done

    def close(self) -> None:
        self.admin.close()

    def _drop_scratch(self) -> None:
        self.admin.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(self.scratch))
        )

    def _rename(self, old: str, new: str) -> None:
        """Rename a database, ending its sessions first; clients reconnecting may race, so retry."""
        for _ in range(_RENAME_ATTEMPTS):
            self.admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = %s AND pid <> pg_backend_pid()",
                [old],
            )
            try:
                self.admin.execute(
                    sql.SQL("ALTER DATABASE {} RENAME TO {}").format(
                        sql.Identifier(old), sql.Identifier(new)
                    )
                )
                return
            except psycopg.errors.ObjectInUse:
                time.sleep(0.1)
        raise ActionError("db.restore", f"database {old!r} stayed in use; could not rename it")


def _derived(name: str, infix: str, stamp: str) -> str:
    """``<name><infix><stamp>`` within PostgreSQL's 63-byte identifier limit."""
    room = _IDENT_MAX - len(infix) - len(stamp)
    return name.encode()[:room].decode(errors="ignore") + infix + stamp


def end_stuck_transactions(
    dsn: str | Secret, *, idle_in_transaction_for: float, blocking_for: float
) -> list[EndedBackend]:
    """End sessions idle in a transaction, and queries blocking others, past the limits
    (pg_terminate_backend / pg_cancel_backend; see stuck.py for which gets what)."""
    server = _Server(dsn, "the database", "db.rollback_stuck")
    ended = []
    try:
        with server.connect(timeout=30) as conn:
            for row in conn.execute(stuck.QUERY).fetchall():
                planned = stuck.plan(
                    stuck.Session(*row),
                    blocking_for=blocking_for,
                    idle_in_transaction_for=idle_in_transaction_for,
                )
                if planned is None:
                    continue
                call = (
                    "pg_terminate_backend" if planned.action == "terminate" else "pg_cancel_backend"
                )
                done = conn.execute(
                    sql.SQL("SELECT {}(%s)").format(sql.Identifier(call)), [planned.pid]
                ).fetchone()[0]
                ended.append(planned.model_copy(update={"ended": bool(done)}))
    except psycopg.Error as exc:
        raise ActionError("db.rollback_stuck", server.scrub(exc)) from None
    return ended
