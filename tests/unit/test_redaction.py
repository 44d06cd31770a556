"""Secrets are redacted everywhere: a secret planted in every kind of notification URL and in
every config reference (bench/safety.py's scenario) never shows in a failing send's outcome,
`lazarus check` and `lazarus incidents --show`, log records (apprise at DEBUG) or the store
file, which holds the stored errors (notify_sends, deliveries, undelivered messages)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from bench.safety import SECRET, secrets


def test_a_planted_secret_shows_nowhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("os.environ", dict(__import__("os").environ))  # the scenario's env vars
    kinds, found = secrets(tmp_path)
    assert kinds == 9 and found == 0
    db = sqlite3.connect(tmp_path / "secret.db")
    errors = [e for (e,) in db.execute("SELECT error FROM notify_sends")]
    db.close()
    assert errors and all(e and SECRET not in e for e in errors)  # says why, not the secret
