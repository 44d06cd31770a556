"""The store's database connection: an SQLite file, or PostgreSQL for many workers.

Every module writes SQLite's SQL through ``Store.transaction()``; on PostgreSQL this module
translates it, statement by statement (cached), so both run the same code:

- ``?`` placeholders -> ``%s``; two-argument ``MIN``/``MAX`` -> ``LEAST``/``GREATEST``;
- ``INSERT OR IGNORE`` -> ``ON CONFLICT DO NOTHING``; ``INSERT OR REPLACE`` -> ``ON CONFLICT
  (primary key) DO UPDATE`` of the inserted columns (the key is read from the catalogue);
- DDL: ``INTEGER PRIMARY KEY AUTOINCREMENT`` -> ``BIGSERIAL``, ``INTEGER`` -> ``BIGINT``,
  ``REAL`` -> ``DOUBLE PRECISION``, ``BLOB`` -> ``BYTEA``; a table without a primary key gets a
  last column ``rowid BIGSERIAL``, as SQLite gives every table one; ``lastrowid`` is answered
  with ``RETURNING`` that serial column.

A write transaction on PostgreSQL first takes one transaction-scoped advisory lock, which
serialises writers exactly as SQLite's ``BEGIN IMMEDIATE`` does, so every compare-and-set in
the store (claims, leases, the one-active-incident rule) holds across machines as it does
across processes. A lost connection is logged and reopened; a transaction it cut short is
rolled back by the server and raised as ``StoreUnavailable``, so the caller's cycle fails
whole and runs again later: nothing half-written, nothing twice.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from functools import lru_cache
from typing import Any

from lazarus.errors import LazarusError

log = logging.getLogger(__name__)

WRITE_LOCK = 0x1A2A_0001  # the advisory lock key every write transaction takes
RECONNECT_FOR = 30.0  # seconds to keep trying a lost PostgreSQL connection


class StoreUnavailable(LazarusError):
    """The store's database cannot be reached; the current work is rolled back, retry it."""


def is_url(target: str) -> bool:
    return target.startswith(("postgresql://", "postgres://"))


class Row(tuple):
    """A result row read by position or by column name, like ``sqlite3.Row``."""

    _names: dict[str, int]

    def __new__(cls, values: Sequence[Any], names: dict[str, int]) -> Row:
        row = super().__new__(cls, values)
        row._names = names
        return row

    def __getitem__(self, key: Any) -> Any:  # type: ignore[override]
        if isinstance(key, str):
            return tuple.__getitem__(self, self._names[key])
        return tuple.__getitem__(self, key)

    def keys(self) -> list[str]:
        return list(self._names)


class Cursor:
    """The part of a DB-API cursor the store's modules use."""

    def __init__(self, rows: list[Row], rowcount: int, lastrowid: int | None):
        self._rows, self.rowcount, self.lastrowid = rows, rowcount, lastrowid

    def fetchone(self) -> Row | None:
        return self._rows[0] if self._rows else None

    def fetchall(self) -> list[Row]:
        return list(self._rows)

    def __iter__(self) -> Iterator[Row]:
        return iter(self._rows)


class PostgresConnection:
    """A PostgreSQL connection that takes SQLite's SQL (see the module docstring)."""

    dialect = "postgresql"

    def __init__(self, url: str, connect_timeout: float = 10.0):
        self.url, self.connect_timeout = url, connect_timeout
        self._lock = threading.RLock()
        self._conn: Any = None
        self._in_tx = False
        self._serials: dict[str, str | None] = {}
        self._keys: dict[str, tuple[list[str], list[str]]] = {}
        self._connect()

    # --- connection -------------------------------------------------------------------------

    def _connect(self) -> None:
        import psycopg

        deadline = time.monotonic() + RECONNECT_FOR
        while True:
            try:
                self._conn = psycopg.connect(
                    self.url, autocommit=True, connect_timeout=int(self.connect_timeout)
                )
                return
            except psycopg.OperationalError as exc:
                if time.monotonic() > deadline:
                    reason = _first_line(exc)
                    raise StoreUnavailable(f"PostgreSQL store unreachable: {reason}") from None
                log.warning("PostgreSQL store unreachable, retrying: %s", _first_line(exc))
                time.sleep(1.0)

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()

    @contextmanager
    def write(self) -> Iterator[PostgresConnection]:
        """One write transaction, serialised with every other writer by the advisory lock."""
        with self._lock:
            self._run("BEGIN", ())
            self._in_tx = True
            try:
                self._run("SELECT pg_advisory_xact_lock(%s)", (WRITE_LOCK,))
                yield self
            except BaseException:
                self._in_tx = False
                if not self._conn.closed:
                    self._run("ROLLBACK", ())
                raise
            self._in_tx = False
            self._run("COMMIT", ())

    # --- statements -------------------------------------------------------------------------

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Cursor:
        with self._lock:
            text, serial = self._translate(sql)
            return self._run(text, tuple(params), serial)

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> Cursor:
        with self._lock:
            text, _ = self._translate(sql)
            count = 0
            for params in rows:
                count += self._run(text, tuple(params)).rowcount
            return Cursor([], count, None)

    def _run(self, text: str, params: tuple, serial: str | None = None) -> Cursor:
        import psycopg

        try:
            cur = self._conn.execute(text, params)
        except psycopg.OperationalError as exc:
            broken = self._conn.closed or self._conn.broken
            if not broken:
                raise
            log.warning("PostgreSQL store connection lost: %s", _first_line(exc))
            in_tx, self._in_tx = self._in_tx, False
            self._connect()
            if in_tx or text == "COMMIT":
                raise StoreUnavailable(
                    "the PostgreSQL connection was lost mid-transaction; it was rolled back"
                ) from None
            cur = self._conn.execute(text, params)
        rows: list[Row] = []
        if cur.description is not None:
            names = {c.name: i for i, c in enumerate(cur.description)}
            rows = [Row(r, names) for r in cur.fetchall()]
        lastrowid = int(rows[0][0]) if serial and rows else None
        return Cursor(rows, cur.rowcount, lastrowid)

    # --- translation ------------------------------------------------------------------------

    def _translate(self, sql: str) -> tuple[str, str | None]:
        text = translate(sql)
        head = text.lstrip().upper()
        if head.startswith(("CREATE TABLE", "ALTER TABLE")):
            self._serials.clear()
            self._keys.clear()
            return text, None
        insert = _INSERT.match(text)
        if insert is None:
            return text, None
        verb, table, columns = insert.group("verb"), insert.group("table"), insert.group("cols")
        if verb == "OR REPLACE":
            text = self._upsert(text, table, columns)
        serial = None if "RETURNING" in head else self._serial(table)
        if serial is not None:
            text = f"{text} RETURNING {serial}"
        return text, serial

    def _upsert(self, text: str, table: str, columns: str | None) -> str:
        names, key = self._columns(table)
        inserted = [c.strip() for c in columns.split(",")] if columns else names
        if columns is None:
            values = _VALUES.search(text)
            count = values.group(1).count(",") + 1 if values else len(names)
            inserted = names[:count]
        text = re.sub(r"INSERT\s+OR\s+REPLACE\s+INTO", "INSERT INTO", text, count=1, flags=re.I)
        update = [c for c in inserted if c not in key]
        if not update:
            return f"{text} ON CONFLICT ({', '.join(key)}) DO NOTHING"
        sets = ", ".join(f"{c} = EXCLUDED.{c}" for c in update)
        return f"{text} ON CONFLICT ({', '.join(key)}) DO UPDATE SET {sets}"

    def _serial(self, table: str) -> str | None:
        """The table's serial column (``id`` or the added ``rowid``), for ``lastrowid``. The
        catalogue is read through ``_run`` too: a lost connection is StoreUnavailable here."""
        if table not in self._serials:
            row = self._run(
                "SELECT column_name FROM information_schema.columns WHERE table_name = %s"
                " AND column_default LIKE 'nextval%%' ORDER BY ordinal_position LIMIT 1",
                (table,),
            ).fetchone()
            self._serials[table] = row[0] if row else None
        return self._serials[table]

    def _columns(self, table: str) -> tuple[list[str], list[str]]:
        """(columns in order, primary key columns) of ``table``."""
        if table not in self._keys:
            names = [
                r[0]
                for r in self._run(
                    "SELECT column_name FROM information_schema.columns WHERE table_name = %s"
                    " ORDER BY ordinal_position",
                    (table,),
                ).fetchall()
            ]
            key = [
                r[0]
                for r in self._run(
                    "SELECT a.attname FROM pg_index i JOIN pg_attribute a"
                    " ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)"
                    " WHERE i.indrelid = %s::regclass AND i.indisprimary",
                    (table,),
                ).fetchall()
            ]
            self._keys[table] = (names, key)
        return self._keys[table]


_INSERT = re.compile(
    r"^\s*INSERT\s+(?P<verb>OR\s+REPLACE|OR\s+IGNORE)?\s*INTO\s+(?P<table>\w+)\s*"
    r"(?:\((?P<cols>[^)]*)\))?",
    re.IGNORECASE,
)
_VALUES = re.compile(r"VALUES\s*\(([^)]*)\)", re.IGNORECASE)
_TWO_ARG = re.compile(r"\b(MIN|MAX)\(([^(),]+),([^(),]+)\)", re.IGNORECASE)


@lru_cache(maxsize=1024)
def translate(sql: str) -> str:
    """SQLite's SQL as PostgreSQL speaks it (statement text only; see the module docstring)."""
    text = sql.replace("%", "%%").replace("?", "%s")
    text = _TWO_ARG.sub(
        lambda m: (
            f"{'LEAST' if m.group(1).upper() == 'MIN' else 'GREATEST'}({m.group(2)},{m.group(3)})"
        ),
        text,
    )
    if re.match(r"\s*INSERT\s+OR\s+IGNORE", text, re.IGNORECASE):
        text = re.sub(r"\s+OR\s+IGNORE", "", text, count=1, flags=re.IGNORECASE)
        text += " ON CONFLICT DO NOTHING"
    if re.match(r"\s*CREATE\s+TABLE", text, re.IGNORECASE):
        text = _table_ddl(text)
    return text


def _table_ddl(text: str) -> str:
    text = re.sub(
        r"\bINTEGER\s+PRIMARY\s+KEY\s+AUTOINCREMENT\b", "BIGSERIAL PRIMARY KEY", text, flags=re.I
    )
    text = re.sub(r"\bINTEGER\b", "BIGINT", text, flags=re.IGNORECASE)
    text = re.sub(r"\bREAL\b", "DOUBLE PRECISION", text, flags=re.IGNORECASE)
    text = re.sub(r"\bBLOB\b", "BYTEA", text, flags=re.IGNORECASE)
    if not re.search(r"PRIMARY\s+KEY", text, re.IGNORECASE):
        text = text.rstrip().rstrip(";")
        text = text[: text.rindex(")")] + ", rowid BIGSERIAL)"
    return text


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
