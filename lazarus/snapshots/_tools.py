"""Running PostgreSQL's command-line tools: list argv (never a shell), a timeout, no secret in argv.

Connection details travel in the environment (PGHOST, PGPASSWORD ...), which other users cannot
read from ``ps``; a failure becomes an ActionError naming the tool and the tail of its stderr.
"""

from __future__ import annotations

import os
import pwd
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

from lazarus.errors import ActionError

PG_BIN = Path(os.environ.get("LAZARUS_PG_BIN", "/usr/lib/postgresql/15/bin"))

_EXCERPT = 600
# libpq connection parameters -> the environment variables the pg tools read them from
LIBPQ_ENV = {
    "host": "PGHOST", "hostaddr": "PGHOSTADDR", "port": "PGPORT", "user": "PGUSER",
    "password": "PGPASSWORD", "passfile": "PGPASSFILE", "dbname": "PGDATABASE",
    "service": "PGSERVICE", "options": "PGOPTIONS", "application_name": "PGAPPNAME",
    "connect_timeout": "PGCONNECT_TIMEOUT", "sslmode": "PGSSLMODE", "sslcert": "PGSSLCERT",
    "sslkey": "PGSSLKEY", "sslrootcert": "PGSSLROOTCERT", "gssencmode": "PGGSSENCMODE",
    "target_session_attrs": "PGTARGETSESSIONATTRS",
}  # fmt: skip


def run(
    argv: Sequence[str],
    *,
    step: str,
    timeout: float,
    env: Mapping[str, str] | None = None,
    hide: Sequence[str] = (),
) -> str:
    """Run a tool, return its stdout; raise ActionError on failure, with ``hide`` scrubbed out."""
    argv = list(argv)
    name = Path(argv[argv.index("--") + 1] if argv[0] == "runuser" else argv[0]).name
    clean = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    try:
        proc = subprocess.run(
            argv,
            env={**clean, **(env or {})},
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise ActionError(step, f"{name} did not finish within {timeout:g}s") from None
    except OSError as exc:
        raise ActionError(step, f"cannot run {argv[0]}: {exc.strerror}") from None
    if proc.returncode != 0:
        raise ActionError(
            step,
            f"{name} failed (exit {proc.returncode}): {excerpt(proc.stderr or proc.stdout, hide)}",
        )
    return proc.stdout


def as_user(user: str, argv: Sequence[str]) -> list[str]:
    """``argv`` run as OS user ``user`` (through runuser when we are root and someone else)."""
    if pwd.getpwuid(os.geteuid()).pw_name == user:
        return list(argv)
    return ["runuser", "-u", user, "--", *argv]


def excerpt(text: str, hide: Sequence[str] = ()) -> str:
    """The last lines of a tool's message, one line, with every secret in ``hide`` masked."""
    for secret in hide:
        if secret:
            text = text.replace(secret, "***")
    text = " ".join(text.split())
    return text if len(text) <= _EXCERPT else "…" + text[-_EXCERPT:]
