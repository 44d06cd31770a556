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
    receivers; without ``executor`` an SSH one is opened from the inventory and closed after."""
    if executor is not None:
        yield StepContext(incident, config, executor=executor, notify=notify)
        return
    from lazarus.remote.ssh import SshExecutor  # paramiko only for runs that may use SSH

    with SshExecutor(config.inventory.ssh, config.base_dir) as ssh:
        yield StepContext(incident, config, executor=ssh, notify=notify)
