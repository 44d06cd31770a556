"""Prefect's local server as `lazarus serve` and the demo run it (no PREFECT_API_URL): no task
run records and no stored events, whose writes met each recover run's creation on its SQLite
(503s, retried up to a minute later)."""

from __future__ import annotations

import pytest

from flows.cli import LOCAL_SERVER, local_server_environment


@pytest.fixture(autouse=True)
def _unset(monkeypatch: pytest.MonkeyPatch) -> None:
    """None of them set, and whatever a test sets undone after it (setenv records them)."""
    for name in LOCAL_SERVER:
        monkeypatch.setenv(name, "")
        monkeypatch.delenv(name)


def test_the_local_server_keeps_no_task_runs_or_events(monkeypatch: pytest.MonkeyPatch) -> None:
    from prefect.settings import Settings

    local_server_environment()
    services = Settings().server.services  # read from the environment, as the server reads it
    assert services.task_run_recorder.enabled is False  # a misspelt name would leave it on
    assert services.event_persister.enabled is False


def test_a_setting_the_user_made_stays(monkeypatch: pytest.MonkeyPatch) -> None:
    from prefect.settings import Settings

    monkeypatch.setenv("PREFECT_SERVER_SERVICES_EVENT_PERSISTER_ENABLED", "true")
    local_server_environment()
    assert Settings().server.services.event_persister.enabled is True
