"""Liveness of a PostgreSQL database: connect and ``SELECT 1``, the way pg_isready cannot
(it does not log in, so a database that refuses logins would pass it).

The DSN may be a secret reference; its text never reaches a message. A TCP connect comes
first so a stopped server reads ``refused`` and a cut link ``unreachable``, from the OS's own
errors rather than libpq's wording.
"""

from __future__ import annotations

import psycopg
from psycopg.conninfo import conninfo_to_dict

from lazarus.secrets import is_reference, resolve
from lazarus.sources.tcp import connect_detail


def select_one(dsn: str, timeout: float) -> tuple[bool, str]:
    """(ok, detail) of one login and ``SELECT 1``; never raises, never shows the DSN."""
    text = resolve(dsn).reveal() if is_reference(dsn) else dsn
    try:
        params = conninfo_to_dict(text)
    except psycopg.Error:
        return False, "error: the DSN is not a libpq connection string"
    host, port = str(params.get("host", "")), int(params.get("port") or 5432)
    if host and not host.startswith("/") and "," not in host:
        refused = connect_detail(host, port, timeout)
        if refused:
            return False, refused
    params["connect_timeout"] = max(1, round(timeout))
    try:
        with psycopg.connect(autocommit=True, **params) as conn:
            conn.execute(f"SET statement_timeout = {int(timeout * 1000)}")
            row = conn.execute("SELECT 1").fetchone()
    except psycopg.Error as exc:
        password = str(params.get("password", ""))
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return False, f"error: {reason.replace(password, '***') if password else reason}"
    return (True, "ok") if row == (1,) else (False, f"error: SELECT 1 returned {row!r}")
