"""The SSH key: `lazarus check` loads it and says which line to fix; a run never dies of it."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from lazarus.cli import main
from lazarus.config import Host, load_config
from lazarus.errors import AuthFailed
from lazarus.remote.ssh import SshExecutor

SECRET = "correct horse"


def _key(folder: Path, kind: str = "ed25519", passphrase: str = "") -> Path:
    path = folder / f"id_{kind}"
    extra = ["-m", "PEM", "-b", "2048"] if kind == "rsa" else []
    subprocess.run(
        ["ssh-keygen", "-q", "-t", kind, *extra, "-N", passphrase, "-f", str(path)], check=True
    )
    return path


def _config(folder: Path, key: Path, passphrase: str | None = None) -> Path:
    path = folder / "lazarus.yaml"
    ssh = f"  ssh:\n    user: opsbot\n    key: {key}\n"
    if passphrase is not None:
        ssh += f"    passphrase: {passphrase}\n"
    path.write_text(f"inventory:\n{ssh}  hosts:\n    - {{name: web-1, address: 127.0.0.1}}\n")
    return path


def _check(path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(["check", "-c", str(path)])
    out = capsys.readouterr()
    assert "Traceback" not in out.out + out.err
    return code, out.err


@pytest.mark.parametrize("kind", ["ed25519", "rsa"])
def test_encrypted_key_without_passphrase_names_the_key_line(
    kind: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _config(tmp_path, _key(tmp_path, kind, SECRET))
    code, err = _check(path, capsys)
    assert code == 2
    assert f"{path}:4: inventory.ssh.key: the SSH key in {tmp_path}" in err
    assert "is encrypted: set inventory.ssh.passphrase" in err


@pytest.mark.parametrize("kind", ["ed25519", "rsa"])
def test_wrong_passphrase_names_the_passphrase_line(
    kind: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LAZARUS_TEST_PASSPHRASE", "nope-7f3")
    path = _config(tmp_path, _key(tmp_path, kind, SECRET), "env:LAZARUS_TEST_PASSPHRASE")
    code, err = _check(path, capsys)
    assert code == 2
    assert f"{path}:5: inventory.ssh.passphrase: the " in err
    assert "env:LAZARUS_TEST_PASSPHRASE does not decrypt the SSH key in" in err
    assert "nope-7f3" not in err


@pytest.mark.parametrize("kind", ["ed25519", "rsa"])
def test_right_passphrase_passes(
    kind: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LAZARUS_TEST_PASSPHRASE", SECRET)
    path = _config(tmp_path, _key(tmp_path, kind, SECRET), "env:LAZARUS_TEST_PASSPHRASE")
    code, err = _check(path, capsys)
    assert code == 0, err
    assert SECRET not in err


def test_unreadable_key_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _config(tmp_path, tmp_path / "missing")
    code, err = _check(path, capsys)
    assert code == 2
    assert f"{path}:4: inventory.ssh.key: cannot read the SSH key {tmp_path / 'missing'}" in err


def test_a_passphrase_must_be_a_reference(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _config(tmp_path, _key(tmp_path), "hunter2")
    code, err = _check(path, capsys)
    assert code == 2 and "inventory.ssh.passphrase" in err and "secret reference" in err
    assert "hunter2" not in err


def test_a_run_gets_auth_failed_not_a_type_error(tmp_path: Path) -> None:
    config = load_config(_config(tmp_path, _key(tmp_path, "ed25519", SECRET)))
    with (
        SshExecutor(config.inventory.ssh, config.base_dir) as ex,
        pytest.raises(AuthFailed, match="is encrypted"),
    ):
        ex._key("web-1")
    assert isinstance(config.inventory.hosts[0], Host)
