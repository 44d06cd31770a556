"""Fixtures for tests that run the Prefect flows against the real sandbox."""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

# Prefect reads these when it is first imported: a private home, and nothing leaves the machine.
os.environ.setdefault("PREFECT_HOME", tempfile.mkdtemp(prefix="lazarus-prefect-"))
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")


_harness: list[str] = []  # the session's Prefect test server's URL, once it runs


@pytest.fixture(scope="session")
def prefect_harness() -> Iterator[None]:
    """One Prefect test server for the session; heartbeats off, as they only slow flows here."""
    from prefect.settings import (
        PREFECT_API_URL,
        PREFECT_FLOWS_HEARTBEAT_FREQUENCY,
        temporary_settings,
    )
    from prefect.testing.utilities import prefect_test_harness

    with (
        temporary_settings({PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}),
        prefect_test_harness(server_startup_timeout=120),
    ):
        _harness.append(PREFECT_API_URL.value())
        yield
        _harness.clear()


@pytest.fixture(autouse=True)
def _no_watch_slot_outlives_its_test() -> Iterator[None]:
    """Watch slots a test left taken on the session's Prefect test server are freed (by deleting
    their limits, which the next watch makes again). That server runs no lease reaper (Prefect
    runs none in its ephemeral mode), so a slot a killed `lazarus serve` held would stay taken
    for the rest of the session and every later watch on that shard would skip its cycles; a
    real `prefect server start` frees it when its lease lapses."""
    yield
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL

    if not _harness or PREFECT_API_URL.value() != _harness[0]:  # not on the session's server
        return
    with get_client(sync_client=True) as client:
        for limit in client.read_global_concurrency_limits(limit=200):
            if limit.name.startswith("lazarus-watch-") and limit.active_slots:
                client.delete_global_concurrency_limit_by_name(limit.name)


@pytest.fixture(scope="module")
def config(sandbox: Any) -> Any:
    """The sandbox's own config, loaded."""
    from lazarus.config import load_config

    return load_config(sandbox.config_path)


@pytest.fixture
def ex(config: Any) -> Iterator[Any]:
    """An SSH executor on the sandbox config, closed after the test."""
    from lazarus.remote.ssh import SshExecutor

    with SshExecutor(config.inventory.ssh, config.base_dir) as executor:
        yield executor


@pytest.fixture
def mark() -> str:
    """A unique text to find this test's messages among everything the sinks received."""
    return f"T-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def healthy(sinks: Any) -> Iterator[Any]:
    """The session's sinks, answering 200 before and after the test."""
    sinks.heal_http()
    yield sinks
    sinks.heal_http()


@pytest.fixture
def healthy_sandbox(sandbox: Any) -> Any:
    """The session sandbox with every fault cleared, before and after the test."""
    for host in sandbox.hosts:
        sandbox.fault(host.name, "heal")
        sandbox.fault(host.name, "clear")
    yield sandbox
    for host in sandbox.hosts:
        sandbox.fault(host.name, "heal")
        sandbox.fault(host.name, "clear")


def _changed(sandbox: Any, changes: dict[str, Any]) -> dict[str, Any]:
    """The sandbox config with ``changes`` merged in (dotted keys)."""
    data = yaml.safe_load(sandbox.config_path.read_text())
    for dotted, value in changes.items():
        node = data
        *parents, last = dotted.split(".")
        for key in parents:  # a number picks a list's item: inventory.services.0.releases
            node = node[int(key)] if isinstance(node, list) else node.setdefault(key, {})
        node[last] = value
    return data


def variant(sandbox: Any, name: str, changes: dict[str, Any]) -> Path:
    """A copy of the sandbox config with ``changes`` merged in (dotted keys), beside it."""
    path = sandbox.config_path.with_name(f"{name}.yaml")
    path.write_text(yaml.safe_dump(_changed(sandbox, changes)))
    return path


def stand_in(sandbox: Any, folder: Path, changes: dict[str, Any]) -> Path:
    """``folder`` made to show the session's sandbox (its files linked, so ``Sandbox.load``
    drives the same hosts) with a config of its own, ``changes`` merged in, and no store yet:
    for what reads the sandbox's own config, as a fire drill or the README's commands do."""
    folder.mkdir(parents=True)
    for entry in sandbox.root.iterdir():
        if entry.name not in ("lazarus.yaml", "state") and entry.suffix != ".yaml":
            (folder / entry.name).symlink_to(entry)
    (folder / "lazarus.yaml").write_text(yaml.safe_dump(_changed(sandbox, changes)))
    return folder
