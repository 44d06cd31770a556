from __future__ import annotations

from pathlib import Path

import pytest

from lazarus.errors import SecretError
from lazarus.secrets import register_resolver, resolve


def test_env_and_file_references_resolve(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv("LZ_TEST_TOKEN", "s3cr3t")
    (tmp_path / "tok").write_text("from-file\n")
    assert resolve("env:LZ_TEST_TOKEN").reveal() == "s3cr3t"
    assert resolve(f"file:{tmp_path / 'tok'}").reveal() == "from-file"
    assert resolve("json://127.0.0.1/x").reveal() == "json://127.0.0.1/x"


def test_a_secret_never_prints_its_value(monkeypatch) -> None:
    monkeypatch.setenv("LZ_TEST_TOKEN", "s3cr3t")
    secret = resolve("env:LZ_TEST_TOKEN")
    assert "s3cr3t" not in repr(secret)
    assert "s3cr3t" not in f"{secret} {[secret]}"


def test_resolver_failure_keeps_the_value_out_of_the_message(monkeypatch) -> None:
    from lazarus import secrets

    def broken(name: str) -> str:
        raise RuntimeError(f"token=hunter2 for {name}")

    monkeypatch.setattr(secrets, "_resolvers", {})
    register_resolver("secret", broken)
    with pytest.raises(SecretError) as caught:
        resolve("secret:db")
    assert "hunter2" not in str(caught.value)
    assert "secret:db" in str(caught.value)


def test_a_scheme_without_resolver_fails_clearly(monkeypatch) -> None:
    from lazarus import secrets

    monkeypatch.setattr(secrets, "_resolvers", {})
    with pytest.raises(SecretError, match="no resolver for 'secret:'"):
        resolve("secret:oncall-chat-url")
