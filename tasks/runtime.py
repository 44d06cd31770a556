"""What every task and flow needs from Prefect's side: config, store, links, secret blocks."""

from __future__ import annotations

from pathlib import Path

from prefect.blocks.system import Secret as SecretBlock
from prefect.runtime import flow_run
from prefect.settings import PREFECT_UI_URL

from lazarus import secrets
from lazarus.config import Config, load_config
from lazarus.store import Store, store_for


def _load_secret_block(name: str) -> str:
    return str(SecretBlock.load(name).get())


def load(config_path: str | Path) -> Config:
    """Load the config with ``secret:NAME`` references answered by Prefect Secret blocks."""
    secrets.register_resolver("secret", _load_secret_block)
    return load_config(config_path)


def open_store(config: Config) -> Store:
    return store_for(config)


def flow_run_url(config: Config) -> str:
    """A link to the current flow run in the Prefect UI, or its id when no UI URL is known."""
    run_id = flow_run.get_id()
    if run_id is None:
        return ""
    base = config.prefect.ui_url or PREFECT_UI_URL.value()
    return f"{base.rstrip('/')}/runs/flow-run/{run_id}" if base else f"flow run {run_id}"


def label_run(name: str, tags: list[str]) -> None:
    """Name the current flow run and add ``tags`` to the ones it has, so a person finds it in
    the runs list by incident, symptom, service or host (no-op outside a flow run)."""
    from prefect import get_client

    run_id = flow_run.get_id()
    if run_id is None:
        return
    with get_client(sync_client=True) as client:
        current = client.read_flow_run(run_id).tags
        client.update_flow_run(run_id, name=name, tags=list(dict.fromkeys([*current, *tags])))
