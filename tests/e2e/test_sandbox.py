"""The sandbox itself: faults change what /health answers, sinks record, down leaves nothing."""

from __future__ import annotations

import json
import os
import smtplib
import socket
import subprocess
import urllib.request
from email.message import EmailMessage
from pathlib import Path

import pytest

from lazarus.cli import main as lazarus
from lazarus.config import load_config
from lazarus.remote.ssh import SshExecutor
from lazarus.sandbox import Sandbox, SandboxError
from lazarus.sandbox._proc import alive, cmdline

pytestmark = pytest.mark.e2e


def netns_names() -> list[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, timeout=10)
    return [line.split()[0] for line in out.stdout.splitlines() if line.strip()]


def recorded_pids(sb: Sandbox) -> list[int]:
    return [pid for pid, _ in json.loads(sb.state_path.read_text())["pids"].values()]


def test_generated_config_passes_check(sandbox: Sandbox) -> None:
    assert lazarus(["check", "-c", str(sandbox.config_path)]) == 0
    config = load_config(sandbox.config_path)
    assert [h.address for h in config.inventory.hosts] == [h.address for h in sandbox.hosts]
    assert config.inventory.services[0].control.config == (
        f"{sandbox.root}/hosts/{{host}}/supervisord.conf"
    )


def test_faults_change_what_health_answers(sandbox: Sandbox) -> None:
    before = sandbox.service_pid("web-1")
    assert sandbox.health("web-1") == 200
    sandbox.fault("web-1", "error")
    assert sandbox.health("web-1") == 500
    sandbox.fault("web-1", "hang")
    assert sandbox.health("web-1") is None  # no answer within 1 s
    sandbox.fault("web-1", "clear")
    assert sandbox.health("web-1") == 200
    assert sandbox.service_pid("web-1") == before  # same process, only its mode changed
    sandbox.fault("web-1", "kill")
    assert sandbox.service_pid("web-1") is None and sandbox.health("web-1") is None
    assert not alive(before)
    sandbox.fault("web-1", "clear")  # starts a killed service again
    assert sandbox.health("web-1") == 200
    assert sandbox.service_pid("web-1") not in (None, before)


def test_metrics_show_the_fault_mode(sandbox: Sandbox) -> None:
    h = sandbox.host("web-2")
    sandbox.fault("web-2", "error")
    try:
        with urllib.request.urlopen(f"http://{h.address}:{h.service_port}/metrics",
                                    timeout=2) as resp:  # fmt: skip
            text = resp.read().decode()
    finally:
        sandbox.fault("web-2", "clear")
    assert "demo_up 1" in text
    assert 'demo_fault{mode="error"} 1' in text and 'demo_fault{mode="none"} 0' in text


def test_partition_cuts_the_host_off_and_heal_restores_it(sandbox: Sandbox) -> None:
    sandbox.fault("web-3", "partition")
    try:
        assert sandbox.health("web-3") is None
        assert sandbox.health("web-2") == 200
    finally:
        sandbox.fault("web-3", "heal")
    assert sandbox.health("web-3") == 200


def test_sinks_record_mail_and_chat(sandbox: Sandbox) -> None:
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = "a@x.test", "b@x.test", "sandbox mail"
    message.set_content("hello")
    with smtplib.SMTP("127.0.0.1", sandbox.smtp_port, timeout=5) as smtp:
        smtp.send_message(message)
    request = urllib.request.Request(f"http://127.0.0.1:{sandbox.http_port}/sandbox-chat",
                                     data=b'{"text": "hi"}', method="POST",
                                     headers={"Content-Type": "application/json"})  # fmt: skip
    urllib.request.urlopen(request, timeout=5).close()
    assert any(m["subject"] == "sandbox mail" for m in sandbox.mail())
    assert any(m["json"] == {"text": "hi"} for m in sandbox.chat())


def test_unknown_host_and_fault_are_refused(sandbox: Sandbox) -> None:
    with pytest.raises(SandboxError, match="no host"):
        sandbox.fault("web-9", "kill")
    with pytest.raises(SandboxError, match="unknown fault"):
        sandbox.fault("web-1", "melt")  # type: ignore[arg-type]


def test_up_replaces_leftovers_and_down_removes_everything(tmp_path: Path) -> None:
    first = Sandbox.up(tmp_path, name="td", subnet=215, hosts=1)
    try:
        old = recorded_pids(first)
        second = Sandbox.up(tmp_path, name="td", subnet=215, hosts=1)  # no down() in between
    except BaseException:
        first.down()
        raise
    try:
        assert not any(alive(pid) for pid in old)
        loaded = Sandbox.load(tmp_path)
        assert loaded.hosts == second.hosts and loaded.health("web-1") == 200
        new = [*recorded_pids(second), second.service_pid("web-1")]
    finally:
        second.down()
    assert not any(alive(pid) for pid in new)
    assert "lztd-1" not in netns_names()
    assert not Path("/sys/class/net/lzbr-td").exists()
    assert not Path("/etc/netns/lztd-1").exists()
    assert not (tmp_path / "sandbox.json").exists()
    with pytest.raises(SandboxError, match="sandbox up"):
        Sandbox.load(tmp_path)


def test_loopback_fallback_runs_real_hosts_without_namespaces(tmp_path: Path) -> None:
    sb = Sandbox.up(tmp_path, name="tl", subnet=216, hosts=1, netns=False)
    try:
        (h,) = sb.hosts
        assert (h.address, h.ssh_port, h.netns) == ("127.216.0.11", 2222, "")
        config = load_config(sb.config_path)
        with SshExecutor(config.inventory.ssh, config.base_dir) as ex:
            assert ex.run(config.inventory.hosts[0], ["echo", "hi"]).stdout == "hi\n"
        sb.fault("web-1", "partition")
        assert sb.health("web-1") is None
        sb.fault("web-1", "heal")
        assert sb.health("web-1") == 200
        pids = [*recorded_pids(sb), sb.service_pid("web-1")]
    finally:
        sb.down()
    assert not any(alive(pid) for pid in pids)


def test_failed_up_stops_what_it_started_and_says_why(tmp_path: Path) -> None:
    with (
        socket.create_server(("127.218.0.11", 2222)),  # the port web-1's sshd needs
        pytest.raises(SandboxError, match=r"sshd:web-1 exited during start: .*2222.*in use"),
    ):
        Sandbox.up(tmp_path, name="tf", subnet=218, hosts=1, netns=False)
    assert not (tmp_path / "sandbox.json").exists()
    assert not [pid for pid in map(int, filter(str.isdigit, os.listdir("/proc")))
                if str(tmp_path) in cmdline(pid)]  # fmt: skip


def test_cli_status_lists_every_host(sandbox: Sandbox, capsys: pytest.CaptureFixture) -> None:
    assert lazarus(["sandbox", "status", "--dir", str(sandbox.root)]) == 0
    out = capsys.readouterr().out
    assert all(f"{h.name} " in out and h.address in out for h in sandbox.hosts)
    assert out.count("/health 200") == len(sandbox.hosts)
