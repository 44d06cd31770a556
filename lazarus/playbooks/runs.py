"""The one factory of what a run hands to playbooks: the watch's recover runs, a person's run
from the UI, dry-run plans and the tests all build their StepContext here, so none lacks the
executor or the notifier (a ``notify`` step failing with "no notifier" is a wiring bug).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from lazarus.config import Config
from lazarus.model import Incident
from lazarus.playbooks.context import StepContext
from lazarus.remote import Executor


@contextmanager
def run_context(
    config: Config,
    incident: Incident,
    *,
    notify: Callable[[str], None],
    executor: Executor | None = None,
) -> Iterator[StepContext]:
    """A StepContext for ``incident``: ``notify`` sends a playbook's message to the incident's
    receivers; without ``executor``, the process's warm SSH connections (the watch's, in its
    process): a restart then costs an exec, not a handshake (~170 ms idle, seconds under load).
    Not the watch's back-off: a step dials its host even while the watch waits to redial it."""
    if executor is None:
        from lazarus.remote.pool import shared_executor  # paramiko only for runs that use SSH

        executor = shared_executor(config.inventory.ssh, config.base_dir).inner
    yield StepContext(incident, config, executor=executor, notify=notify)
