"""Move an SQLite store to PostgreSQL: every table, index and row, in one transaction.

The target is opened as a Store first (so it has the current schema version); every other table
of the file is created there with the same translation the running store uses, its rows copied,
and each serial column's sequence moved past the copied ids. A target that already holds
incidents is refused: merging two stores' ids would silently mix two histories.
"""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

from lazarus.errors import LazarusError
from lazarus.store import Store

BATCH = 1000
_SKIP = ("sqlite_sequence", "lazarus_schema")


class MigrateError(LazarusError):
    """The store cannot be moved as asked; nothing was written."""


def migrate(sqlite_path: Path, url: str) -> dict[str, int]:
    """Copy the SQLite store at ``sqlite_path`` into the PostgreSQL store at ``url``;
    returns the rows copied per table (none when there is no store yet)."""
    if not sqlite_path.exists():  # a first set-up: nothing to move, the schema is made
        Store(url).close()
        return {}
    if not sqlite_path.is_file():
        raise MigrateError(f"{sqlite_path}: not an SQLite store file")
    source = sqlite3.connect(f"file:{sqlite_path}?mode=ro", uri=True)
    Store(sqlite_path).close()  # bring the file to the current schema version first
    target = Store(url)
    try:
        tables = [
            (name, sql)
            for name, sql in source.execute(
                "SELECT name, sql FROM sqlite_master WHERE type = 'table' ORDER BY rowid"
            )
            if name not in _SKIP
        ]
        indexes = [
            sql
            for (sql,) in source.execute(
                "SELECT sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL"
            )
        ]
        copied: dict[str, int] = {}
        with target.transaction() as db:
            (held,) = db.execute("SELECT COUNT(*) FROM incidents").fetchone()
            if held:
                raise MigrateError(f"the PostgreSQL store already holds {held} incident(s)")
            for name, sql in tables:
                db.execute(_if_not_exists(sql, "TABLE"))
                copied[name] = _copy(source, db, name)
            for sql in indexes:
                db.execute(_if_not_exists(sql, "INDEX"))
            for name in copied:
                _advance_sequences(db, name)
        return copied
    finally:
        target.close()
        source.close()


def _if_not_exists(sql: str, kind: str) -> str:
    return re.sub(
        rf"^\s*CREATE\s+(UNIQUE\s+)?{kind}\s+(?!IF\s+NOT\s+EXISTS)",
        lambda m: f"CREATE {m.group(1) or ''}{kind} IF NOT EXISTS ",
        sql,
        count=1,
        flags=re.IGNORECASE,
    )


def _copy(source: sqlite3.Connection, db: object, table: str) -> int:
    columns = [row[1] for row in source.execute(f'PRAGMA table_info("{table}")')]
    names = ", ".join(columns)
    insert = f"INSERT INTO {table} ({names}) VALUES ({', '.join('?' * len(columns))})"
    cursor = source.execute(f'SELECT {names} FROM "{table}"')
    count = 0
    while rows := cursor.fetchmany(BATCH):
        db.executemany(insert, rows)  # type: ignore[attr-defined]
        count += len(rows)
    return count


def _advance_sequences(db: object, table: str) -> None:
    """Move each serial column's sequence past the ids copied in, so new rows do not collide."""
    serials = db.execute(  # type: ignore[attr-defined]
        "SELECT column_name FROM information_schema.columns WHERE table_name = ?"
        " AND column_default LIKE 'nextval%'",
        (table,),
    ).fetchall()
    for (column,) in serials:
        db.execute(  # type: ignore[attr-defined]
            f"SELECT setval(pg_get_serial_sequence('{table}', '{column}'),"
            f" COALESCE((SELECT MAX({column}) FROM {table}), 0) + 1, false)"
        )
