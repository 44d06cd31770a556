"""The taint rule against real sshd: a hostile value in an incident's labels, host or service
never steers an action; names are looked up in the inventory, and what a template hands to a
shell is quoted.

Each hostile value tries to create a canary file; the sandbox hosts share this machine's file
system, so a canary made on a host or on the Lazarus machine is seen here.
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from lazarus.config import AllowedCommand, Config, Control
from lazarus.errors import CommandRejected
from lazarus.model import Incident, IncidentState
from lazarus.playbooks import Hooks, Playbook, PlaybookSettings, StepContext, run
from lazarus.remote.control import control_argv
from lazarus.remote.ssh import SshExecutor
from lazarus.sandbox import files as sandbox_files

pytestmark = pytest.mark.e2e

HOSTILE = [
    "-oProxyCommand=touch {canary}",
    "web-1; touch {canary}",
    "web-1 && touch {canary}",
    "$(touch {canary})",
    "`touch {canary}`",
    "web-1\ntouch {canary}",
    "' ; touch {canary} ; '",
    '" ; touch {canary} ; "',
    "web-1|touch {canary}",
    "../../../../{canary}",
    "{{{{ incident.labels.x }}}}",
]


def _incident(host: str = "web-1", service: str = sandbox_files.SERVICE, **labels: str) -> Incident:
    return Incident(
        1, "f", host, service, "service_down", "critical", IncidentState.OPEN, "", labels, 0.0
    )


PROMISED = ['a="b"', 'x=~".+"', 'mount=~".+"']  # the labels the tests' templates name


def _book(step: dict[str, Any]) -> Playbook:
    return Playbook.model_validate(
        {"version": 1, "name": "t", "trigger": {"matchers": PROMISED}, "steps": [step]}
    )


def _approve() -> Hooks:
    return Hooks(approve=lambda step, plan: True)


@pytest.fixture
def canary(tmp_path: Path) -> Path:
    return tmp_path / "canary"


@pytest.mark.parametrize("value", HOSTILE)
def test_a_hostile_incident_host_never_reaches_a_host_or_a_shell(
    value: str, canary: Path, config: Config, ex: SshExecutor
) -> None:
    hostile = value.format(canary=canary)
    settings = config.playbooks.model_copy(
        update={"out_of_band": ["sh", "-c", f"echo reboot {{address}} >> {canary}.log"]}
    )
    for step in (
        {"id": "s", "action": "ssh.restart"},
        {"id": "s", "action": "ssh.run", "with": {"argv": ["true"]}},
        {"id": "s", "action": "host.reboot"},
    ):
        ctx = StepContext(_incident(host=hostile), config, settings=settings, executor=ex)
        result = run(_book(step), ctx, _approve())
        assert result.status == "failed", (step, result)
        assert not canary.exists() and not Path(f"{canary}.log").exists(), step


@pytest.mark.parametrize("value", HOSTILE)
def test_a_hostile_service_or_label_never_names_a_unit_or_an_argument(
    value: str, canary: Path, config: Config, ex: SshExecutor
) -> None:
    hostile = value.format(canary=canary)
    ctx = StepContext(_incident(service=hostile), config, executor=ex)
    assert run(_book({"id": "s", "action": "ssh.restart"}), ctx).status == "failed"
    settings = config.playbooks.model_copy(
        update={"allow_commands": [AllowedCommand(argv0="echo", args=["[a-z0-9-]+"])]}
    )
    book = _book(
        {"id": "s", "action": "ssh.run", "with": {"argv": ["echo", "{{ incident.labels.x }}"]}}
    )
    ctx = StepContext(_incident(x=hostile), config, settings=settings, executor=ex)
    assert run(book, ctx).status == "failed"
    assert not canary.exists()


def test_the_reboot_command_gets_the_inventory_address_quoted(canary: Path, config: Config) -> None:
    settings = config.playbooks.model_copy(
        update={"out_of_band": ["sh", "-c", f"echo reboot {{host}} {{address}} >> {canary}"]}
    )
    ctx = StepContext(_incident(host="web-1"), config, settings=settings)
    result = run(_book({"id": "s", "action": "host.reboot"}), ctx, _approve())
    assert result.status == "resolved", result
    address = config.inventory.host("web-1").address
    assert canary.read_text() == f"reboot web-1 {address}\n"


@pytest.mark.parametrize("value", HOSTILE)
def test_a_command_template_quotes_every_placeholder_through_real_sshd(
    value: str, canary: Path, config: Config, ex: SshExecutor
) -> None:
    # the config refuses such a unit; bypass that to prove the quoting holds on its own
    hostile = value.format(canary=canary)
    control = Control.model_construct(
        kind="command", unit=hostile, restart="x", status="sh -c 'echo [{unit}]'"
    )
    service = config.inventory.service(sandbox_files.SERVICE)
    if hostile.startswith("-"):
        with pytest.raises(CommandRejected, match="is not an argument"):
            control_argv(control, "status", service, config.inventory.host("web-1"))
        return
    argv = control_argv(control, "status", service, config.inventory.host("web-1"))
    result = ex.run(config.inventory.host("web-1"), argv, timeout=10)
    assert result.ok and result.stdout == f"[{hostile}]\n"
    assert not canary.exists()


def test_config_refuses_a_hostile_unit_and_address(config: Config) -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="unit"):
        Control(kind="command", unit="web; touch /tmp/x", restart="sh -c 'x {unit}'")
    with pytest.raises(ValidationError, match="address"):
        config.inventory.hosts[0].model_validate(
            {"name": "h", "address": "-oProxyCommand=touch /tmp/x"}
        )
    with pytest.raises(ValidationError, match="unknown placeholder"):
        PlaybookSettings(out_of_band=["ipmitool", "-H", "{addr}"])


def test_a_hostile_label_reaches_mail_as_text_not_html(sinks: Any, mark: str) -> None:
    from lazarus.notify.deliver import deliver
    from lazarus.notify.message import render

    hostile = _incident(host=f"web-1<img src=x onerror=alert('{mark}')>")
    hostile = replace(hostile, summary="log: <script>steal()</script> & <b>bold</b>")
    message = render(hostile, "opened", actions=["<a href='javascript:x'>click</a>"])
    url = f"mailto://127.0.0.1:{sinks.smtp_port}?from=l@x.test&to=o@x.test"
    chat = f"json://127.0.0.1:{sinks.http_port}/hook"
    assert deliver("oncall", [url, chat], f"{mark} {message.title}", message.body, timeout=10)
    [mail] = [m for m in sinks.messages("mail") if mark in m["subject"]]
    assert (
        "<img" not in mail["html"]
        and "<script" not in mail["html"]
        and "<a href='" not in mail["html"]
    )
    assert "&lt;img src=x onerror=alert" in mail["html"] and "&lt;script&gt;" in mail["html"]
    assert "<strong>" in mail["html"]  # the message's own markdown still renders
    [posted] = [m for m in sinks.messages("http") if mark in str(m)]
    assert "<script>steal()</script>" in str(posted)  # plain text stays plain


def test_a_hostile_disk_clean_path_never_deletes_outside_clean_paths(
    tmp_path: Path, config: Config, ex: SshExecutor
) -> None:
    """seams' canonicalisation on the host, tried with hostile label values."""
    clean, victim = tmp_path / "clean", tmp_path / "victim"
    clean.mkdir()
    victim.mkdir()
    (victim / "precious").write_text("keep me")
    os.utime(victim / "precious", (0, 0))  # old enough to be deleted, were it reached
    (clean / "escape").symlink_to(victim)
    canary = tmp_path / "canary"
    settings = config.playbooks.model_copy(update={"clean_paths": [str(clean)]})
    book = _book(
        {
            "id": "c",
            "action": "disk.clean",
            "with": {"path": "{{ incident.labels.mount }}", "older_than": "1m"},
        }
    )
    values = [v.format(canary=canary) for v in HOSTILE] + [
        f"{clean}/../victim",
        str(victim),
        f"{clean}/escape",
        f"{clean}/escape/",
        "/",
        "-delete",
    ]
    for value in values:
        ctx = StepContext(_incident(mount=value), config, settings=settings, executor=ex)
        result = run(book, ctx)
        assert result.status == "failed" or "freed 0.0 MiB" in result.steps[0].detail, value
        assert (victim / "precious").read_text() == "keep me", value
        assert not canary.exists(), value


def test_a_rollback_folder_never_comes_from_a_label() -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="never a template"):
        Playbook.model_validate(
            {
                "version": 1,
                "name": "t",
                "trigger": {"matchers": ['releases=~".+"']},
                "steps": [
                    {
                        "id": "rb",
                        "action": "release.rollback",
                        "with": {"releases": "{{ incident.labels.releases }}"},
                    }
                ],
            }
        )
