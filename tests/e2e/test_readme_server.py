"""The README's "Running on a Prefect server" section, run as written.

Its two marked ``sh`` blocks (the PostgreSQL set-up, then the server path) run in one bash script,
in that order, against the session's PostgreSQL cluster named by PGHOST/PGPORT/PGUSER/PGPASSWORD,
as the README says (the two databases the script creates are dropped afterwards). Three things
differ, each for the test machine, not for the reader: the port 4300 becomes a free one; `lazarus
sandbox up` (fixed names, which a second sandbox on this machine must not take) is stood in for by
the session's sandbox, seen from ``.lazarus/sandbox`` of the script's folder with a config of its
own (watching every 2 s); and the one config edit the README asks for in a comment (``url:
env:LAZARUS_STATE_URL``) is made before the script.
Then: the incident on web-2 resolves in the PostgreSQL store and web-2 answers again (checked on
the host), the UI is served and points at the API it was told, and `prefect deploy --all
--prefect-file deployments/prefect.yaml` from the checkout changes none of the deployments `lazarus
deploy` made (``remediate: false`` included). Every process is ended by its group.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import psycopg
import pytest

from lazarus.sandbox.postgres import PostgresServer
from tests.e2e.conftest import stand_in
from tests.e2e.prefect_server import BIN, api, end_group, free_port, wait_incident

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
MARK = "<!-- tested verbatim by tests/e2e/test_readme_server.py: {} -->"
# what a deployment is, as `lazarus deploy` makes it and `prefect deploy` re-applies it
KEPT = ("entrypoint", "path", "parameters", "tags", "job_variables", "pull_steps",
        "work_pool_name", "concurrency_limit", "concurrency_options",
        "global_concurrency_limit")  # fmt: skip


def readme_block(name: str) -> list[str]:
    """The command lines of the README's ``sh`` block marked ``name``."""
    text = (ROOT / "README.md").read_text()
    after = text.split(MARK.format(name), 1)[1]
    body = re.search(r"```sh\n(.*?)```", after, re.DOTALL)
    assert body is not None, f"no sh block after the {name} marker"
    return [line for line in body.group(1).splitlines() if line.strip()]


def _deployments(env: dict[str, str]) -> dict[str, dict[str, Any]]:
    found = api(env, "deployments/filter", {})
    kept = {d["name"]: {k: d.get(k) for k in (*KEPT, "schedules")} for d in found}
    for deployment in kept.values():  # the limit, not when the server last touched its row
        if limit := deployment["global_concurrency_limit"]:
            deployment["global_concurrency_limit"] = (limit["limit"], limit["active"])
    return kept


def _schedules(deployment: dict[str, Any]) -> list[str]:
    """Each schedule's interval or cron and zone (not its anchor: re-applying moves it)."""
    keys = ("interval", "cron", "timezone")
    return sorted(str({k: s["schedule"].get(k) for k in keys}) for s in deployment["schedules"])


def test_the_readme_server_path_and_its_postgresql_steps_run_as_written(
    healthy_sandbox: Any, postgres: PostgresServer, tmp_path: Path
) -> None:
    sandbox = healthy_sandbox  # every fault it makes is cleared again afterwards
    port = free_port()
    site = tmp_path / "site"
    stand_in(  # .lazarus/sandbox, with the README's one edit and a quicker detection
        sandbox,
        site / ".lazarus" / "sandbox",
        {"state.url": "env:LAZARUS_STATE_URL", "watch.interval": "2s"},
    )
    lines = [
        line.replace("4300", str(port))
        for line in readme_block("postgresql") + readme_block("server-path")
        if not line.startswith("lazarus sandbox up")
    ]
    cluster = postgres
    dsn = urlsplit(cluster.dsn())
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_API", "LAZARUS_STATE"))
    }
    env.update({
        "PATH": f"{BIN}:{env['PATH']}",
        "PREFECT_HOME": str(tmp_path / "prefect"),
        "DO_NOT_TRACK": "1",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PGHOST": dsn.hostname or "", "PGPORT": str(dsn.port),
        "PGUSER": dsn.username or "", "PGPASSWORD": dsn.password or "",
    })  # fmt: skip
    log = (tmp_path / "readme.log").open("w")
    shell = subprocess.Popen(
        ["bash", "-ec", "\n".join(lines)],
        cwd=site,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # the server and worker it leaves running share its group
    )
    try:
        assert shell.wait(timeout=420) == 0, (tmp_path / "readme.log").read_text()[-3000:]
        server = {**env, "PREFECT_API_URL": f"http://127.0.0.1:{port}/api"}
        incident = wait_incident(
            f"{cluster.dsn('lazarus')}", "web-2", ("resolved", "escalated"), limit=300
        )
        assert incident.state == "resolved", incident.reason
        assert sandbox.health("web-2") == 200  # on the host, not through Lazarus

        # the UI is served, and told where its API is
        ui = f"http://127.0.0.1:{port}"
        assert "<html" in httpx.get(ui, timeout=30).text.lower()
        assert httpx.get(f"{ui}/ui-settings", timeout=30).json()["api_url"] == f"{ui}/api"

        # deployments/prefect.yaml re-applies exactly what `lazarus deploy` made
        made = _deployments(server)
        assert made["watch"]["parameters"]["remediate"] is False
        again = subprocess.run(
            [BIN / "prefect", "deploy", "--all", "--prefect-file", "deployments/prefect.yaml"],
            cwd=ROOT,
            env=server,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert again.returncode == 0, again.stdout[-2000:] + again.stderr[-2000:]
        after = _deployments(server)
        assert after.keys() == made.keys()
        for name, was in made.items():
            assert {k: after[name][k] for k in KEPT} == {k: was[k] for k in KEPT}, name
            assert _schedules(after[name]) == _schedules(was), name
    finally:
        end_group(shell)  # the script, and the server and the worker it left running
        log.close()
        with psycopg.connect(cluster.dsn(), autocommit=True) as admin:
            for name in ("prefect", "lazarus"):  # what the script's createdb made
                admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
