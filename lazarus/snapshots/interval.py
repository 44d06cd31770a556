"""Fault-interval recovery: undo what [t1, t2] did to some tables, keep every write after t2.

Two side copies of the cluster (at t1 and at t2, see sidecopy.py) and the live database are
compared row by row by primary key (an md5 of each row's text). A row the interval deleted or
changed (different at t1 and t2) and that nobody touched since (live equals t2) gets its t1
version back; one changed again after t2 is a conflict, listed and left alone; rows the
interval inserted stay. The t1 rows are saved to a private folder by ``plan_interval`` (so
the side copies need not live through an approval) and ``apply_interval`` writes them in one
transaction, re-checking under row locks that nothing moved since the plan.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

import psycopg
from psycopg import sql
from pydantic import BaseModel

from lazarus.config import Database
from lazarus.errors import ActionError
from lazarus.snapshots._pg import Server
from lazarus.snapshots.sidecopy import refuse_without_pitr, side_copy

_STEP = "db.interval"
Key = tuple[str, ...]


class TablePlan(BaseModel):
    """What recovery would do to one table; keys are the primary key's values as text."""

    table: str
    key_columns: list[str]
    inserts: list[list[str]] = []  # deleted by the interval: put back
    updates: list[list[str]] = []  # changed by the interval: set back
    expected: list[str] = []  # each update's live row md5 when planned (re-checked on apply)
    conflicts: list[list[str]] = []  # changed again after t2: left alone


class IntervalPlan(BaseModel):
    database: str
    start: datetime
    end: datetime
    folder: Path  # the t1 rows, one COPY file per table, and this plan as plan.json
    tables: list[TablePlan]

    def counts(self) -> dict[str, dict[str, int]]:
        return {
            t.table: {
                "insert": len(t.inserts),
                "update": len(t.updates),
                "conflict": len(t.conflicts),
            }
            for t in self.tables
        }

    def summary(self) -> str:
        return "; ".join(
            f"{table}: insert {c['insert']}, update {c['update']}, conflicts {c['conflict']}"
            for table, c in self.counts().items()
        )


def plan_interval(
    db: Database, start: datetime, end: datetime, folder: Path, *, timeout: float = 600.0
) -> IntervalPlan:
    """Diff t1, t2 and live for ``db.tables``; save the t1 rows to re-apply in ``folder``."""
    refuse_without_pitr(db, _STEP)
    if not start < end:
        raise ActionError(_STEP, f"the interval must start before it ends ({start} >= {end})")
    if not db.tables:
        raise ActionError(_STEP, f"{db.name}: name the affected tables in databases[].tables")
    live = Server(db.dsn, db.name, _STEP)
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    with live.connect(timeout=timeout) as conn:
        keys = {t: _key_columns(conn, db.name, t) for t in db.tables}
    tables = []
    with (
        side_copy(db, start, timeout=timeout) as before,
        side_copy(db, end, timeout=timeout) as after,
        before.server.connect(timeout=timeout) as at_start,
        after.server.connect(timeout=timeout) as at_end,
        live.connect(timeout=timeout) as now,
    ):
        for table, cols in keys.items():
            plan = _diff(
                table,
                cols,
                _hashes(at_start, table, cols),
                _hashes(at_end, table, cols),
                _hashes(now, table, cols),
            )
            _save_rows(at_start, plan, folder / f"{_safe(table)}.copy")
            tables.append(plan)
    result = IntervalPlan(database=db.name, start=start, end=end, folder=folder, tables=tables)
    (folder / "plan.json").write_text(result.model_dump_json(indent=1))
    return result


def load_plan(folder: Path) -> IntervalPlan:
    return IntervalPlan.model_validate_json((folder / "plan.json").read_text())


def apply_interval(db: Database, plan: IntervalPlan, *, timeout: float = 600.0) -> IntervalPlan:
    """Write the planned rows back in one transaction; rows that moved since the plan become
    conflicts and are left alone. Returns the plan as applied."""
    live = Server(db.dsn, db.name, _STEP)
    done = []
    try:
        with live.connect(timeout=timeout) as conn, conn.transaction():
            for table in plan.tables:
                done.append(_apply(conn, table, plan.folder / f"{_safe(table.table)}.copy"))
    except psycopg.Error as exc:
        raise ActionError(
            _STEP, f"{db.name}: re-applying failed, nothing was written: {live.scrub(exc)}"
        ) from None
    return plan.model_copy(update={"tables": done})


def _ident(table: str) -> sql.Identifier:
    return sql.Identifier(*table.split("."))


def _safe(table: str) -> str:
    return "".join(c if c.isalnum() or c in "._-" else "_" for c in table)


def _key_columns(conn: psycopg.Connection, database: str, table: str) -> list[str]:
    rows = conn.execute(
        "SELECT a.attname FROM pg_index i JOIN pg_attribute a"
        " ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)"
        " WHERE i.indrelid = %s::regclass AND i.indisprimary"
        " ORDER BY array_position(i.indkey::int2[], a.attnum)",
        [table],
    ).fetchall()
    if not rows:
        raise ActionError(
            _STEP, f"{database}: table {table!r} has no primary key; rows cannot be matched"
        )
    return [r[0] for r in rows]


def _key_sql(cols: Sequence[str], alias: str = "t") -> sql.Composable:
    return sql.SQL(", ").join(
        sql.SQL("{}.{}::text").format(sql.Identifier(alias), sql.Identifier(c)) for c in cols
    )


def _hashes(conn: psycopg.Connection, table: str, cols: list[str]) -> dict[Key, str]:
    query = sql.SQL("SELECT ARRAY[{}], md5(t::text) FROM {} t").format(
        _key_sql(cols), _ident(table)
    )
    return {tuple(k): h for k, h in conn.execute(query)}


def _diff(
    table: str, cols: list[str], start: dict[Key, str], end: dict[Key, str], now: dict[Key, str]
) -> TablePlan:
    plan = TablePlan(table=table, key_columns=cols)
    for key, old in start.items():
        mid = end.get(key)
        if mid == old:
            continue  # the interval did not touch it
        if now.get(key) != mid:
            plan.conflicts.append(list(key))  # touched again after t2: a person decides
        elif mid is None:
            plan.inserts.append(list(key))
        else:
            plan.updates.append(list(key))
            plan.expected.append(now[key])
    return plan


def _keys_join(cols: list[str], keys: list[list[str]]) -> tuple[sql.Composable, list[list[str]]]:
    """``JOIN unnest(...) k ON t.c::text = k.c ...`` for ``keys``, and its parameters."""
    names = [f"k{i}" for i in range(len(cols))]
    unnest = sql.SQL(", ").join(sql.SQL("%s::text[]") for _ in cols)
    on = sql.SQL(" AND ").join(
        sql.SQL("t.{}::text = k.{}").format(sql.Identifier(c), sql.Identifier(n))
        for c, n in zip(cols, names, strict=True)
    )
    clause = sql.SQL("JOIN unnest({}) AS k({}) ON {}").format(
        unnest, sql.SQL(", ").join(map(sql.Identifier, names)), on
    )
    return clause, [[k[i] for k in keys] for i in range(len(cols))]


def _save_rows(conn: psycopg.Connection, plan: TablePlan, path: Path) -> None:
    """The t1 version of every row to put back, as COPY text."""
    join, params = _keys_join(plan.key_columns, plan.inserts + plan.updates)
    query = sql.SQL("COPY (SELECT t.* FROM {} t {}) TO STDOUT").format(_ident(plan.table), join)
    with open(path, "wb") as out, conn.cursor() as cur, cur.copy(query, params) as copy:
        for block in copy:
            out.write(block)
    path.chmod(0o600)


def _apply(conn: psycopg.Connection, plan: TablePlan, rows: Path) -> TablePlan:
    table, cols = _ident(plan.table), plan.key_columns
    moved = _moved_since_plan(conn, plan)
    conn.execute(sql.SQL("CREATE TEMP TABLE lazarus_rows (LIKE {}) ON COMMIT DROP").format(table))
    with open(rows, "rb") as source, conn.cursor().copy("COPY lazarus_rows FROM STDIN") as copy:
        for block in iter(lambda: source.read(1 << 20), b""):
            copy.write(block)
    if moved:
        join, params = _keys_join(cols, moved)
        conn.execute(
            sql.SQL(
                "DELETE FROM lazarus_rows t USING (SELECT t.* FROM lazarus_rows t {}) m WHERE {}"
            ).format(join, _same_key(cols, "t", "m")),
            params,
        )
    match = _same_key(cols, "t", "s")
    columns = [
        r[0]
        for r in conn.execute(
            "SELECT attname FROM pg_attribute WHERE attrelid = %s::regclass AND attnum > 0"
            " AND NOT attisdropped AND attgenerated = '' ORDER BY attnum",
            [plan.table],
        )
    ]
    names = sql.SQL(", ").join(map(sql.Identifier, columns))
    conn.execute(
        sql.SQL("UPDATE {} t SET ({}) = ROW({}) FROM lazarus_rows s WHERE {}").format(
            table,
            names,
            sql.SQL(", ").join(sql.SQL("s.{}").format(sql.Identifier(c)) for c in columns),
            match,
        )
    )
    inserted = conn.execute(
        sql.SQL(
            "INSERT INTO {} ({}) OVERRIDING SYSTEM VALUE SELECT {} FROM lazarus_rows s"
            " WHERE NOT EXISTS (SELECT 1 FROM {} t WHERE {})"
            " ON CONFLICT DO NOTHING RETURNING 1"
        ).format(table, names, names, table, match)
    ).fetchall()
    conn.execute("DROP TABLE lazarus_rows")
    gone = {tuple(k) for k in moved}
    inserts = [k for k in plan.inserts if tuple(k) not in gone]
    if len(inserted) != len(inserts):  # cannot happen under the locks; say so if it does
        raise ActionError(
            _STEP, f"{plan.table}: {len(inserted)} rows inserted, {len(inserts)} planned"
        )
    return plan.model_copy(
        update={
            "inserts": inserts,
            "updates": [k for k in plan.updates if tuple(k) not in gone],
            "conflicts": plan.conflicts + [list(k) for k in gone],
        }
    )


def _same_key(cols: list[str], a: str, b: str) -> sql.Composable:
    return sql.SQL(" AND ").join(
        sql.SQL("{}.{} = {}.{}").format(
            sql.Identifier(a), sql.Identifier(c), sql.Identifier(b), sql.Identifier(c)
        )
        for c in cols
    )


def _moved_since_plan(conn: psycopg.Connection, plan: TablePlan) -> list[list[str]]:
    """Keys whose live row changed (or appeared) since the plan; the rows stay locked."""
    keys = plan.inserts + plan.updates
    if not keys:
        return []
    join, params = _keys_join(plan.key_columns, keys)
    query = sql.SQL("SELECT ARRAY[{}], md5(t::text) FROM {} t {} FOR UPDATE OF t").format(
        _key_sql(plan.key_columns), _ident(plan.table), join
    )
    now = {tuple(k): h for k, h in conn.execute(query, params)}
    expected = dict(zip(map(tuple, plan.updates), plan.expected, strict=True))
    return [list(k) for k in map(tuple, keys) if now.get(k) != expected.get(k)]


def keys_file(plan: IntervalPlan) -> Path:
    """Every key the recovery changed, kept beside the rows for the audit."""
    path = plan.folder / "applied-keys.json"
    path.write_text(
        json.dumps(
            {
                t.table: {"inserted": t.inserts, "updated": t.updates, "conflicts": t.conflicts}
                for t in plan.tables
            }
        )
    )
    return path
