"""A wait for approval that ends once the fault cleared by itself.

A cut host that comes back needs no reboot, and under `lazarus serve` alone nobody can answer the
form: the run would wait out ``approval.timeout`` (15 minutes), then escalate a fault that was
gone. So while a person is asked, the incident's own probe is looked at every
``APPROVAL_RECHECK`` seconds; once it passes, the wait is answered on the incident's behalf and
the playbook goes to its verify steps. Only for ``host_down``, whose probe (SSH answers) is the
whole symptom: a service's probe can pass while what a person was asked about (a corrupt table,
a release with a bad feature) is still there.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from prefect.context import FlowRunContext
from prefect.exceptions import NotPausedError
from prefect.flow_runs import resume_flow_run

from lazarus.incidents import HOST_DOWN
from lazarus.playbooks.actions.basic import own_probe
from lazarus.playbooks.context import StepContext

APPROVAL_RECHECK = 5.0  # seconds between looks at the symptom while a person is asked
BY = "lazarus"  # the name the answer of a cleared fault carries in the run's input
log = logging.getLogger(__name__)


@contextmanager
def withdrawn_once_cleared(ctx: StepContext) -> Iterator[threading.Event]:
    """An event set when the incident's probe passed and its run's pause was answered for it.
    The caller checks it after each pause, before reading the answer as a person's."""
    cleared = threading.Event()
    run = FlowRunContext.get()
    if ctx.incident.symptom != HOST_DOWN or run is None:
        yield cleared
        return
    run_id = run.flow_run.id
    _, check = own_probe(ctx)
    stop = threading.Event()
    answer = {"approver": BY, "decision": "reject", "comment": "the symptom cleared meanwhile"}

    def look() -> None:
        while not stop.wait(APPROVAL_RECHECK):
            try:
                if not check().ok:
                    continue
                cleared.set()  # before the answer: the paused run reads it as soon as it wakes
                resume_flow_run(run_id, run_input=answer)
                log.info("incident #%d cleared while it waited for approval", ctx.incident.id)
                return
            except NotPausedError:  # between two asks: look again at the next one
                cleared.clear()
            except Exception:
                cleared.clear()
                log.exception("incident #%d: could not look at its symptom", ctx.incident.id)

    thread = threading.Thread(target=look, name=f"approval-{ctx.incident.id}", daemon=True)
    thread.start()
    try:
        yield cleared
    finally:
        stop.set()
        thread.join(timeout=APPROVAL_RECHECK)
