"""Service control argv: a hostile name stays one argument, and manager answers map to errors."""

from __future__ import annotations

import shlex

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lazarus.config import Control, Host, Probe, Service
from lazarus.errors import CommandRejected, UnitNotFound
from lazarus.model import CommandResult
from lazarus.remote.control import check_control_result, control_argv

HOSTILE = [
    "; rm -rf /",
    "$(touch /tmp/pwned)",
    "`touch /tmp/pwned`",
    "web\nrm -rf /",
    'it\'s "quoted"',
    "two words",
    "a && b | c > /etc/passwd",
    "{host}",
]
HOST = Host(name="web-1", address="10.0.0.11")


def service(name: str = "web", **control: object) -> Service:
    """A service built without validation, so even names the config would refuse reach argv."""
    return Service.model_construct(
        name=name, hosts={}, probe=Probe(http="http://{address}/"), labels={},
        control=Control.model_construct(**{**Control().model_dump(), **control}),
    )  # fmt: skip


def sent(argv: list[str]) -> list[str]:
    """What the remote shell gets back out of the command line the executor sends."""
    return shlex.split(shlex.join(argv))


@pytest.mark.parametrize("hostile", HOSTILE)
def test_supervisor_unit_is_one_argument(hostile: str) -> None:
    argv = control_argv(
        Control.model_construct(
            kind="supervisor", unit=hostile, config="/etc/{host}/supervisord.conf"
        ),
        "restart", service(), HOST,
    )  # fmt: skip
    assert argv == ["supervisorctl", "-c", "/etc/web-1/supervisord.conf", "restart", hostile]
    assert sent(argv) == argv


@pytest.mark.parametrize("hostile", HOSTILE)
def test_systemd_unit_defaults_to_service_name_and_stays_one_argument(hostile: str) -> None:
    argv = control_argv(Control(kind="systemd"), "stop", service(hostile), HOST)
    assert argv == ["systemctl", "stop", hostile]
    assert sent(argv) == argv


@pytest.mark.parametrize("hostile", HOSTILE)
def test_command_template_is_split_before_it_is_filled(hostile: str) -> None:
    control = Control(kind="command", restart="/opt/bin/ctl --name {service} --unit={unit} now")
    argv = control_argv(
        control, "restart", service(hostile, kind="command", restart=control.restart), HOST
    )
    # a placeholder inside a longer token is shell-quoted: a shell may read that token
    assert argv == ["/opt/bin/ctl", "--name", hostile, f"--unit={shlex.quote(hostile)}", "now"]
    assert sent(argv) == argv
    assert argv.count(hostile) == 1


@pytest.mark.parametrize("hostile", HOSTILE)
def test_a_shell_script_template_gets_each_placeholder_quoted(hostile: str) -> None:
    control = Control(kind="command", restart="sh -c 'systemctl restart {unit} && echo {host}'")
    argv = control_argv(
        control, "restart", service(hostile, kind="command", restart=control.restart), HOST
    )
    assert argv[:2] == ["sh", "-c"]
    assert shlex.split(argv[2]) == ["systemctl", "restart", hostile, "&&", "echo", "web-1"]


@pytest.mark.parametrize(
    "control",
    [
        {"kind": "supervisor"},
        {"kind": "systemd"},
        {"kind": "docker"},
        {"kind": "command", "restart": "ctl {unit}"},
    ],
)
def test_a_value_that_looks_like_an_option_is_refused(control: dict[str, str]) -> None:
    with pytest.raises(CommandRejected, match="-oProxyCommand"):
        control_argv(
            Control.model_construct(**{**Control().model_dump(), **control}),
            "restart",
            service("-oProxyCommand=x"),
            HOST,
        )


def test_the_config_refuses_a_unit_that_is_not_a_name_and_unknown_placeholders() -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="should match pattern"):
        Control(kind="systemd", unit="web; rm -rf /")
    with pytest.raises(ValidationError, match=r"unknown placeholder \{addr\}"):
        Control(kind="command", restart="ctl {addr}")


@given(st.text(min_size=1, max_size=40).filter(lambda s: not s.startswith("-")))
def test_any_text_stays_one_token(name: str) -> None:
    control = Control.model_construct(
        **{
            **Control().model_dump(),
            "kind": "command",
            "restart": "restart-it {unit}",
            "unit": name,
        }
    )
    argv = control_argv(control, "restart", service(), HOST)
    assert argv == ["restart-it", name]
    assert sent(argv) == argv


def test_only_known_placeholders_are_filled() -> None:
    control = Control(kind="command", restart="x {host} {unit.__class__} {0} {service}")
    argv = control_argv(control, "restart", service("api"), HOST)
    assert argv == ["x", "web-1", "{unit.__class__}", "{0}", "api"]


@pytest.mark.parametrize("hostile", HOSTILE)
def test_docker_container_name_stays_one_argument(hostile: str) -> None:
    control = Control.model_construct(kind="docker", unit=hostile)
    assert control_argv(control, "restart", service(), HOST) == [
        "docker", "container", "restart", hostile
    ]  # fmt: skip
    status = control_argv(control, "status", service(), HOST)
    assert status[:3] == ["docker", "container", "inspect"] and status[-1] == hostile
    assert sent(status) == status


def test_unknown_docker_container_is_unit_not_found() -> None:
    with pytest.raises(UnitNotFound):
        check_control_result(
            result(1, stderr="Error response from daemon: No such container: api",
                   command="docker container restart api"), "api"
        )  # fmt: skip


def test_command_kind_without_a_template_for_the_action_is_rejected() -> None:
    control = Control(kind="command", restart="ctl restart {service}")
    with pytest.raises(CommandRejected, match="no 'status' template") as info:
        control_argv(control, "status", service(), HOST)
    assert info.value.host == "web-1"


def result(code: int, stdout: str = "", stderr: str = "", command: str = "x") -> CommandResult:
    return CommandResult(host="web-1", command=command, exit_code=code, stdout=stdout,
                         stderr=stderr, duration_s=0.1)  # fmt: skip


@pytest.mark.parametrize(
    "answer",
    [
        result(1, "nope: ERROR (no such process)\n", command="supervisorctl restart nope"),
        result(0, "nope: ERROR (no such process)\n", command="supervisorctl restart nope"),
        result(
            5,
            "",
            "Failed to restart nope.service: Unit nope.service not found.\n",
            command="systemctl restart nope",
        ),
        result(5, "", "", command="systemctl restart nope"),
    ],
)
def test_unknown_unit_is_unit_not_found(answer: CommandResult) -> None:
    with pytest.raises(UnitNotFound, match="nope") as info:
        check_control_result(answer, "nope")
    assert info.value.host == "web-1"


def test_other_failures_are_rejected_with_exit_code_and_excerpt() -> None:
    stderr = "web: ERROR (spawn error)\n" + "x" * 1000
    answer = result(7, "", stderr, command="supervisorctl start web")
    with pytest.raises(CommandRejected) as info:
        check_control_result(answer, "web")
    message = str(info.value)
    assert "exit code 7" in message and "spawn error" in message
    assert len(message) < 500


def test_success_passes() -> None:
    check_control_result(result(0, "web: ERROR (not running)\nweb: started\n"), "web")
