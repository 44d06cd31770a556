"""SshExecutor against the sandbox's real sshd: output, quoting, timeouts, keys, errors, reuse."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from lazarus.config import Config, Host
from lazarus.errors import (
    AuthFailed,
    CommandTimeout,
    ConnectionRefused,
    ConnectTimeout,
    HostKeyMismatch,
    TransientError,
    UnitNotFound,
)
from lazarus.remote.control import check_control_result, control_argv
from lazarus.remote.ssh import SshExecutor
from lazarus.sandbox import Sandbox

pytestmark = pytest.mark.e2e


def executor(config: Config, **changes: object) -> SshExecutor:
    return SshExecutor(config.inventory.ssh.model_copy(update=changes), config.base_dir)


def host(config: Config, name: str = "web-1") -> Host:
    return config.inventory.host(name)


def test_run_returns_exit_code_and_both_streams(ex: SshExecutor, config: Config) -> None:
    result = ex.run(host(config), ["sh", "-c", "echo out; echo err >&2; exit 3"])
    assert (result.exit_code, result.stdout, result.stderr) == (3, "out\n", "err\n")
    assert not result.ok and not result.truncated
    assert result.host == "web-1" and result.command == "sh -c 'echo out; echo err >&2; exit 3'"


def test_output_is_capped_and_marked_truncated(config: Config) -> None:
    with executor(config, output_limit=1024) as ex:
        result = ex.run(host(config), ["sh", "-c", "yes x | head -c 100000"])
    assert result.ok and result.truncated
    assert result.stdout == "x\n" * 512


def test_hostile_arguments_are_printed_literally_and_run_nothing(
    ex: SshExecutor, config: Config, tmp_path: Path
) -> None:
    marker = tmp_path / "pwned"
    hostile = [f"; touch {marker}", f"$(touch {marker})", f"`touch {marker}`",
               f"a\ntouch {marker}", "it's \"q\"", "two  spaces", "&& | > <"]  # fmt: skip
    result = ex.run(host(config), ["printf", "%s|", *hostile])
    assert result.ok
    assert result.stdout == "".join(f"{h}|" for h in hostile)
    assert not marker.exists()


def test_command_timeout_closes_the_channel_and_the_connection_stays_usable(
    ex: SshExecutor, config: Config
) -> None:
    # The sandbox logs in as root, for whom OpenSSH refuses the "signal" request that kills the
    # command on the host (verified by hand with a non-root user); the timeout itself holds.
    with pytest.raises(CommandTimeout) as info:
        ex.run(host(config), ["sleep", "5"], timeout=0.5)
    assert info.value.host == "web-1"
    assert ex.run(host(config), ["echo", "still here"]).stdout == "still here\n"


def test_unknown_host_key_is_rejected(config: Config, tmp_path: Path) -> None:
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    with executor(config, known_hosts=str(empty)) as ex, pytest.raises(HostKeyMismatch) as info:
        ex.run(host(config), ["true"])
    assert info.value.host == "web-1"
    assert "known_hosts" in str(info.value)
    assert empty.read_text() == ""


def test_changed_host_key_is_rejected_even_when_trusting_on_first_use(
    config: Config, sandbox: Sandbox, tmp_path: Path
) -> None:
    # web-2's real key pinned under web-1's address: exactly what an impersonator looks like
    lines = (sandbox.root / "known_hosts").read_text().splitlines()
    web1, web2 = host(config, "web-1"), host(config, "web-2")
    key_of_web2 = next(line for line in lines if line.startswith(f"{web2.address} "))
    forged = tmp_path / "known_hosts"
    forged.write_text(key_of_web2.replace(web2.address, web1.address, 1) + "\n")
    for policy in ("reject", "trust_on_first_use"):
        with (
            executor(config, known_hosts=str(forged), host_key_policy=policy) as ex,
            pytest.raises(HostKeyMismatch, match="changed"),
        ):
            ex.run(web1, ["true"])


def test_trust_on_first_use_pins_the_key_it_saw(
    config: Config, sandbox: Sandbox, tmp_path: Path
) -> None:
    known = tmp_path / "known_hosts"
    with executor(config, known_hosts=str(known), host_key_policy="trust_on_first_use") as ex:
        assert ex.run(host(config), ["true"]).ok
    pinned = known.read_text().split()
    real = (sandbox.root / "known_hosts").read_text().splitlines()[0].split()
    assert pinned == real
    with executor(config, known_hosts=str(known)) as ex:  # now plain reject accepts it
        assert ex.run(host(config), ["true"]).ok


def test_wrong_client_key_is_auth_failed(config: Config, tmp_path: Path) -> None:
    key = tmp_path / "other_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True,
                   timeout=10)  # fmt: skip
    with executor(config, key=str(key)) as ex, pytest.raises(AuthFailed) as info:
        ex.run(host(config), ["true"])
    assert info.value.host == "web-1"


def test_nothing_listening_is_connection_refused(ex: SshExecutor, config: Config) -> None:
    closed_port = host(config).model_copy(update={"port": 2})
    with pytest.raises(ConnectionRefused) as info:
        ex.run(closed_port, ["true"])
    assert info.value.host == "web-1"


def test_partitioned_host_is_transient_and_works_after_heal(
    config: Config, sandbox: Sandbox
) -> None:
    web3 = host(config, "web-3")
    sandbox.fault("web-3", "partition")
    try:
        with executor(config, connect_timeout=1.0) as ex, pytest.raises(TransientError) as info:
            ex.run(web3, ["true"])
        assert info.value.host == "web-3"
    finally:
        sandbox.fault("web-3", "heal")
    with executor(config) as ex:
        assert ex.run(web3, ["true"]).ok


def test_supervisor_restart_brings_a_killed_service_back(
    ex: SshExecutor, config: Config, sandbox: Sandbox
) -> None:
    service = config.inventory.service("web")
    web2 = host(config, "web-2")
    sandbox.fault("web-2", "kill")
    assert sandbox.service_pid("web-2") is None and sandbox.health("web-2") is None
    result = ex.run(web2, control_argv(service.control, "restart", service, web2), timeout=20)
    check_control_result(result, service.name)
    assert sandbox.service_pid("web-2") is not None
    assert sandbox.health("web-2") == 200


def test_unknown_unit_is_unit_not_found(ex: SshExecutor, config: Config) -> None:
    service = config.inventory.service("web")
    ghost = service.model_copy(update={"control": service.control.model_copy(
        update={"unit": "no-such-unit"})})  # fmt: skip
    web1 = host(config)
    result = ex.run(web1, control_argv(ghost.control, "restart", ghost, web1))
    with pytest.raises(UnitNotFound, match="no-such-unit"):
        check_control_result(result, "no-such-unit")


def test_connection_is_reused_and_reopened_once_it_dies(ex: SshExecutor, config: Config) -> None:
    web1 = host(config)
    first = ex.run(web1, ["sh", "-c", "echo $SSH_CONNECTION $PPID"]).stdout.split()
    second = ex.run(web1, ["sh", "-c", "echo $SSH_CONNECTION $PPID"]).stdout.split()
    assert first[:4] == second[:4]  # same client port: one TCP connection, one transport
    served_by = int(second[4])  # the sshd process serving that connection
    os.kill(served_by, signal.SIGTERM)
    for _ in range(100):  # bounded: until it is gone
        if not Path(f"/proc/{served_by}").exists():
            break
        time.sleep(0.02)
    third = ex.run(web1, ["sh", "-c", "echo $SSH_CONNECTION"]).stdout.split()
    assert third[1] != first[1]  # a new connection from a new client port


def test_parallel_runs_share_one_connection_per_host_and_leak_no_fds(
    ex: SshExecutor, config: Config
) -> None:
    hosts = config.inventory.hosts
    for h in hosts:
        ex.run(h, ["true"])  # connect first, so the fd count below includes the connections
    fds = len(os.listdir("/proc/self/fd"))
    with ThreadPoolExecutor(max_workers=6) as pool:
        jobs = [pool.submit(ex.run, h, ["sh", "-c", "echo $SSH_CONNECTION"]) for h in hosts * 4]
        results = [job.result(timeout=60) for job in jobs]
    ports = {(r.host, r.stdout.split()[1]) for r in results}
    assert sorted(host for host, _ in ports) == [h.name for h in hosts]
    assert len(os.listdir("/proc/self/fd")) == fds


@pytest.mark.parametrize("key_type", ["ed25519", "ecdsa", "rsa"])
def test_each_key_type_works_from_a_file_and_from_a_secret(
    key_type: str, config: Config, sandbox: Sandbox, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    key = tmp_path / f"id_{key_type}"
    subprocess.run(["ssh-keygen", "-q", "-t", key_type, "-N", "", "-f", str(key)], check=True,
                   timeout=30)  # fmt: skip
    authorized = sandbox.root / "authorized_keys"
    original = authorized.read_text()
    authorized.write_text(original + key.with_suffix(".pub").read_text())
    monkeypatch.setenv("LAZARUS_TEST_SSH_KEY", key.read_text())
    try:
        for reference in (str(key), "env:LAZARUS_TEST_SSH_KEY"):
            with executor(config, key=reference) as ex:
                assert ex.run(host(config), ["echo", key_type]).stdout == f"{key_type}\n"
    finally:
        authorized.write_text(original)


def test_a_hung_connection_fails_once_as_transient_and_is_dialled_afresh(config: Config) -> None:
    web1 = host(config)
    with executor(config, connect_timeout=1.0) as ex:
        served_by = int(ex.run(web1, ["sh", "-c", "echo $PPID"]).stdout)
        os.kill(served_by, signal.SIGSTOP)  # the connection's sshd process: open, silent
        try:
            with pytest.raises(ConnectTimeout, match="did not answer"):
                ex.run(web1, ["true"])
        finally:
            os.kill(served_by, signal.SIGCONT)
        assert ex.run(web1, ["true"]).ok  # on a new connection
