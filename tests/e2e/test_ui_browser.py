"""An operator recovers an incident through the Prefect UI, in a real Chromium.

Written against the UI bundled with Prefect 3.9.1 (the default Vue UI, not "Switch to V2 UI").
A real `prefect server start` (SQLite) and a process worker run the deployed Lazarus. Watch opens
the incident (auto-remediation is off); the operator starts recover from the deployment's
"Run -> Custom run" form, finds the run by its name (``recover #N service_down web@host``), sees
the incident on the board artifact, approves the paused run with the Approval form behind
"Resume" (the plan above it, a name and a decision typed in), and finds the incident report
among the run's artifacts. A second incident's run, rejected from a shell, shows `Failed` with
the reason. Screenshots go to test-output/ui/.

The playbook is the shipped service-down with a release rollback first: a destructive step, so
the engine asks for approval before it; a rollback of a scratch releases folder is harmless
here (it also restarts the service).
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.e2e.conftest import variant
from tests.e2e.prefect_server import (
    actions,
    lazarus,
    prefect_server,
    run_deployment,
    wait_for,
    wait_incident,
    worker,
)

sync_api = pytest.importorskip("playwright.sync_api")
expect = sync_api.expect
pytestmark = [pytest.mark.e2e, pytest.mark.browser]
ROOT = Path(__file__).parents[2]
SHOTS = ROOT / "test-output" / "ui"
PORT = 4393
UI = f"http://127.0.0.1:{PORT}"
API = f"{UI}/api"
STATE = "state/ui-browser.db"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",  # the tests run as root
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
WAIT_MS = 120_000  # a flow run's start on the worker, or its end, in the UI
LOG_MS = 60_000  # a run's logs reach the server in batches, and the UI polls for them


@pytest.fixture
def server(tmp_path: Path) -> Iterator[dict[str, str]]:
    with prefect_server(tmp_path, PORT) as env:
        yield env


@pytest.fixture
def page() -> Iterator[Any]:
    """A page of the system Chromium, driven by Playwright (no downloaded browser)."""
    if not Path(CHROMIUM).exists():
        pytest.skip(f"needs {CHROMIUM} (apt-get install chromium)")
    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(headless=True, executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            tab = browser.new_page(viewport={"width": 1400, "height": 1000})
            tab.set_default_timeout(30_000)
            tab.on("response", _report_server_error)
            yield tab
        finally:
            browser.close()


def _report_server_error(response: Any) -> None:
    """Print each API answer of 500 or more: pytest shows them when the test fails."""
    if response.status >= 500:
        print("UI request failed:", response.status, response.request.method, response.url)


def _playbooks(tmp_path: Path) -> tuple[Path, Path]:
    """The approval playbook folder, and the scratch releases folder its rollback flips."""
    releases = tmp_path / "releases"  # the sandbox hosts share this machine's file system
    for release in ("r1", "r2"):
        (releases / release).mkdir(parents=True)
    (releases / "current").symlink_to("r2")
    book = yaml.safe_load((ROOT / "playbooks" / "service-down.yaml").read_text())
    book["approval"] = {"required": "always", "timeout": "5m"}
    rollback = {"id": "rollback", "action": "release.rollback", "with": {"releases": str(releases)}}
    book["steps"].insert(0, rollback)
    books = tmp_path / "playbooks"
    books.mkdir()
    (books / "service-down.yaml").write_text(yaml.safe_dump(book, sort_keys=False))
    return books, releases


def _lazarus(env: dict[str, str], *argv: str) -> None:
    done = lazarus(env, *argv)
    assert done.returncode == 0, done.stderr


def _shot(page: Any, name: str) -> None:
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def _submit(page: Any, submit: Any, endpoint: str) -> None:
    """Click ``submit`` until its POST to ``endpoint`` is not a 503, at most five times.

    Prefect's SQLite answers 503 when another writer holds the database ("database is locked").
    Its Python client retries that; the UI shows "Oops. Something went wrong." and keeps the
    form, so the operator clicks again. The failed request changed nothing: no run is made twice.
    """
    for _ in range(5):
        # error toasts pause their timeout under the pointer and may cover the button: the
        # pointer goes away, and the click waits until no toast is in its way
        page.mouse.move(0, 0)
        with page.expect_response(
            lambda r: r.request.method == "POST" and r.url.endswith(endpoint), timeout=WAIT_MS
        ) as answer:
            submit.click(timeout=WAIT_MS)
        if answer.value.status != 503:
            break
    assert answer.value.ok, f"POST {endpoint}: {answer.value.status}"
    page.mouse.move(0, 0)


def _start_recover(page: Any, incident: Any) -> str:
    """Deployments -> recover -> Run -> Custom run (the UI's own form); returns the run's name.

    Ends on the new run's page, found by the name Lazarus gives it once it starts.
    """
    page.goto(f"{UI}/deployments")
    recover = page.get_by_role("link", name="recover", exact=True)
    recover.and_(page.locator("[href^='/deployments/deployment/']")).click()
    _shot(page, "1-deployment")
    page.get_by_role("button", name="Run", exact=True).click()
    page.get_by_text("Custom run", exact=True).click()
    field = page.locator(".schema-form-property").filter(
        has=page.get_by_text("incident_id", exact=True)
    )
    field.get_by_role("spinbutton").fill(str(incident.id))
    _shot(page, "2-custom-run")
    _submit(page, page.get_by_role("button", name="Submit"), "/create_flow_run")
    name = f"recover #{incident.id} {incident.symptom} {incident.target}"
    _open_listed_run(page, name)
    return name


def _shown(page: Any, locator: Any, tries: int = 4) -> None:
    """Wait for ``locator`` to show. On a busy machine a page can miss its next poll (a run
    that ended stops polling for its last logs); the operator reloads, as anyone would."""
    for _ in range(tries - 1):
        try:
            expect(locator).to_be_visible(timeout=15_000)
            return
        except AssertionError:
            page.reload()
    expect(locator).to_be_visible(timeout=LOG_MS)


def _open_listed_run(page: Any, name: str) -> None:
    """The deployment page lists the new run by its name (stacked toasts may repeat it)."""
    link = page.get_by_role("link", name=name, exact=True).first
    _shown(page, link)
    link.click()


def _approve(page: Any, name: str, comment: str) -> None:
    """Resume opens the Approval form of tasks/remediate.py: the plan, then a name, a decision
    and a comment; submitting it unchanged is not possible (no defaults)."""
    page.get_by_role("button", name="Resume").click()
    dialog = page.get_by_role("dialog")
    expect(dialog.get_by_text("release.rollback on web-1").first).to_be_visible(timeout=LOG_MS)
    approver, comment_box = (
        dialog.get_by_role("textbox").nth(0),
        dialog.get_by_role("textbox").nth(1),
    )
    approver.fill(name)
    decision = dialog.locator(".p-select").first  # the design library's select: by keyboard
    decision.click()
    decision.press("ArrowDown")
    decision.press("Enter")
    expect(decision).to_contain_text("approve")
    comment_box.fill(comment)
    _shot(page, "4-approval-form")
    _submit(page, dialog.get_by_role("button", name="Submit"), "/resume")


def _open_board(page: Any, incident: Any) -> None:
    """Artifacts -> incident-board: the open incident is listed, with its state."""
    page.goto(f"{UI}/artifacts/key/incident-board")
    page.locator("a[href^='/artifacts/artifact/']").first.click()  # the newest version
    expect(page.get_by_text(f"#{incident.id}", exact=True).first).to_be_visible(timeout=WAIT_MS)
    expect(page.get_by_text(incident.target, exact=True).first).to_be_visible()
    _shot(page, "3b-incident-board")


def _open_report(page: Any, incident_id: int) -> None:
    """The run's Artifacts tab lists the incident report; open it."""
    page.get_by_text("Artifacts", exact=True).click()
    report = page.get_by_text(f"incident-{incident_id}", exact=True)
    expect(report).to_be_visible()
    _shot(page, "6-artifacts")
    report.click()
    heading = page.get_by_role("heading", name=re.compile(rf"Incident #{incident_id}:"))
    expect(heading).to_be_visible()
    expect(page.get_by_text("resolved", exact=True).first).to_be_visible()
    # who approved, from the audit (a run's logs reach the server in batches a loaded server
    # may drop; the report is written at once)
    expect(page.get_by_text("approval: ana (approved in the browser test)")).to_be_visible()
    _shot(page, "7-incident-report")


def test_operator_recovers_and_approves_in_the_prefect_ui(
    healthy_sandbox: Any, server: dict[str, str], page: Any, tmp_path: Path
):
    sandbox = healthy_sandbox  # the killed service is started again afterwards
    books, releases = _playbooks(tmp_path)
    config = variant(sandbox, "ui-browser", {"state.path": STATE, "playbooks.dir": str(books)})
    db = sandbox.root / STATE
    _lazarus(server, "deploy", "-c", str(config))
    _lazarus(server, "auto-remediation", "off")  # watch only opens the incident
    host = sandbox.hosts[0].name
    sandbox.fault(host, "kill")
    try:
        with worker(server, tmp_path):
            incident = wait_incident(db, host, ("open", "notified"))
            # the second incident's fault: the watch opens it while the operator works below
            sandbox.fault(sandbox.hosts[1].name, "kill")
            name = _start_recover(page, incident)
            # the run pauses before the rollback; nothing has changed yet
            state = page.locator(".state-badge").first
            expect(state).to_have_text("Paused", timeout=WAIT_MS)
            asked = page.get_by_text("waits for approval").first
            _shown(page, asked)
            _shot(page, "3-paused")
            assert os.readlink(releases / "current") == "r2"
            assert actions(db, incident.id) == []
            run_page = page.url
            _open_board(page, incident)
            page.goto(run_page)

            _approve(page, "ana", "approved in the browser test")
            expect(state).to_have_text("Completed", timeout=WAIT_MS)
            _shot(page, "5-completed")
            resolved = wait_incident(db, host, ("resolved", "escalated"), limit=30)
            assert resolved.id == incident.id
            assert resolved.state == "resolved", resolved.reason
            assert ("oncall.approve", "ana", True) in actions(db, incident.id)
            assert ("release.rollback", "operator", True) in actions(db, incident.id)
            assert os.readlink(releases / "current") == "r1"
            assert sandbox.health(host) == 200
            _open_report(page, incident.id)
            named = {"flow_runs": {"name": {"any_": [name]}}}
            runs = httpx.post(f"{API}/flow_runs/filter", json=named, timeout=10).json()
            # a click again after a 503 made no second run (the automation's, left alone as
            # auto-remediation is off, bears the incident's name too)
            assert [r["state_name"] for r in runs].count("Completed") == 1
            _rejected_run_fails(page, server, config, sandbox, releases)
    except Exception:
        _shot(page, "failed-here")  # where the UI stood when the test gave up
        raise


def _rejected_run_fails(
    page: Any, env: dict[str, str], config: Path, sandbox: Any, releases: Path
) -> None:
    """A second incident (its service killed once the first opened), its run rejected from a
    shell: the UI shows it Failed, with why."""
    host = sandbox.hosts[1].name
    incident = wait_incident(sandbox.root / STATE, host, ("open", "notified"))
    run_deployment(env, "recover/recover", incident_id=incident.id)
    for _ in range(60):
        done = lazarus(env, "reject", "-c", str(config), str(incident.id), "--as", "ana")
        if done.returncode == 0 or "waits for approval" not in done.stderr:
            break
        time.sleep(2)
    assert done.returncode == 0, done.stderr + done.stdout
    # the automation's run bears the same name and was left alone: open the one that failed
    named = {"flow_runs": {"name": {"any_": [f"recover #{incident.id} {incident.symptom} "
                                              f"{incident.target}"]}}}  # fmt: skip

    def failed() -> str | None:
        runs = httpx.post(f"{API}/flow_runs/filter", json=named, timeout=10).json()
        return next((r["id"] for r in runs if r["state_type"] == "FAILED"), None)

    page.goto(f"{UI}/runs/flow-run/{wait_for('the rejected run to fail', failed)}")
    state = page.locator(".state-badge").first
    expect(state).to_have_text("Failed", timeout=WAIT_MS)
    page.get_by_text("Details", exact=True).click()  # the state message: why it escalated
    expect(page.get_by_text("not approved").first).to_be_visible(timeout=LOG_MS)
    _shot(page, "8-escalated-failed")
    assert os.readlink(releases / "current") == "r1"  # nothing ran
