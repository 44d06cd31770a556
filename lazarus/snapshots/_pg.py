"""The PostgreSQL connection adapter of the snapshot modules: the one place psycopg is imported.

``Server`` reaches one database from its DSN (never showing the password); ``Swap`` holds the
scratch database and renames of one restore and how to undo each of them.
"""

from __future__ import annotations

import time
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from lazarus.errors import ActionError, LazarusError
from lazarus.secrets import Secret, resolve
from lazarus.snapshots._tools import LIBPQ_ENV, PG_BIN, excerpt, run

CONNECT_TIMEOUT = 10
_RENAME_ATTEMPTS = 50
_IDENT_MAX = 63
Error = psycopg.Error


class Server:
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
        return f"Server(dbname={self.dbname!r})"

    def moved(self, host: str, port: int) -> Server:
        """The same database, user and password on another server (a side copy)."""
        other = object.__new__(Server)
        other.__dict__.update(self.__dict__)
        other._params = {**self._params, "host": host, "port": port}
        other._params.pop("hostaddr", None)
        return other

    def conninfo(self) -> str:
        """The libpq connection string (holds the password: hand it on, never show it)."""
        return make_conninfo(**self._params)

    def env(self, dbname: str | None = None) -> dict[str, str]:
        """Connection settings for a pg tool, as environment variables (never argv)."""
        env = {LIBPQ_ENV[k]: str(v) for k, v in self._params.items()}
        env["PGDATABASE"] = dbname or self.dbname
        env.setdefault("PGCONNECT_TIMEOUT", str(CONNECT_TIMEOUT))
        return env

    def connect(
        self, dbname: str | None = None, *, timeout: float | None = None, read_only: bool = False
    ) -> psycopg.Connection:
        """An autocommit connection; ``timeout`` bounds every statement on it, ``read_only``
        makes every transaction on it read-only (a check can never write)."""
        params = {**self._params, "dbname": dbname or self.dbname}
        params.setdefault("connect_timeout", CONNECT_TIMEOUT)
        options = [params.get("options", "")]
        if timeout:
            options.append(f"-c statement_timeout={int(timeout * 1000)}")
        if read_only:
            options.append("-c default_transaction_read_only=on")
        params["options"] = " ".join(o for o in options if o)
        if not params["options"]:
            del params["options"]
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


def row_counts(conn: psycopg.Connection, tables: list[str]) -> dict[str, int | None]:
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


class Swap:
    """The scratch database and the renames of one restore, and how to undo each of them."""

    def __init__(self, server: Server, maintenance_db: str, timeout: float):
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        self.server, self.target = server, server.dbname
        self.scratch = derived(self.target, "__restore_", stamp)
        self.aside = derived(self.target, "__pre_restore_", stamp)
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


def derived(name: str, infix: str, stamp: str) -> str:
    """``<name><infix><stamp>`` within PostgreSQL's 63-byte identifier limit."""
    room = _IDENT_MAX - len(infix) - len(stamp)
    return name.encode()[:room].decode(errors="ignore") + infix + stamp
