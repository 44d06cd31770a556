"""`lazarus serve CONFIG`: watch on its interval; recover, acknowledge, backtest on demand."""

from __future__ import annotations

from pathlib import Path

from prefect import serve

from flows.acknowledge import acknowledge
from flows.backtest import backtest
from flows.recover import recover
from flows.watch import watch
from tasks.runtime import load


def serve_flows(config_path: Path) -> None:
    """Register the deployments with the Prefect API and run their flow runs until stopped."""
    config = load(config_path)
    serve(
        watch.to_deployment(
            name="watch",
            interval=config.watch.interval,
            parameters={"config_path": str(config_path)},
        ),
        recover.to_deployment(name="recover", parameters={"config_path": str(config_path)}),
        backtest.to_deployment(name="backtest", parameters={"config_path": str(config_path)}),
        acknowledge.to_deployment(name="acknowledge", parameters={"config_path": str(config_path)}),
    )
