"""Retry policy shared by every task that talks to the outside world."""

from __future__ import annotations

from typing import Any

from lazarus.errors import TransientError


def backoff(first_delay: float, retries: int) -> list[float]:
    """Exponential delays: first, 2x first, 4x first ... one per retry."""
    return [first_delay * 2**attempt for attempt in range(retries)]


def only_transient(task: Any, task_run: Any, state: Any) -> bool:
    """Prefect retry condition: retry errors that may pass, never a permanent one."""
    try:
        state.result()
    except TransientError:
        return True
    except Exception:
        return False
    return False
