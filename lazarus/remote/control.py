"""Service control (restart/start/stop/status) as argv lists, and what a manager's answer means.

Templates are filled by lazarus.remote.templates: a value never becomes two arguments, an
option, or a shell operator; the executor quotes every token.
"""

from __future__ import annotations

import re
from typing import Literal

from lazarus.commandline import fill_argv
from lazarus.config import Control, Host, Service
from lazarus.errors import CommandRejected, UnitNotFound
from lazarus.model import CommandResult

Action = Literal["restart", "start", "stop", "status"]

_NOT_FOUND = (
    re.compile(r"no such (process|group)", re.IGNORECASE),  # supervisorctl
    re.compile(r"unit \S+ (not found|could not be found)", re.IGNORECASE),  # systemctl
    re.compile(r"no such (container|object)", re.IGNORECASE),  # docker
)
_SYSTEMCTL_NO_SUCH_UNIT = 5
_EXCERPT = 300


def control_argv(control: Control, action: Action, service: Service, host: Host) -> list[str]:
    """The argv that performs ``action`` on ``service`` at ``host`` with its service manager."""
    unit = control.unit or service.name
    values = {"service": service.name, "unit": unit, "host": host.name, "address": host.address}
    for name in ("service", "unit"):  # the config refuses these; a forged value stops here too
        if values[name].startswith("-") or not values[name]:
            raise CommandRejected(host.name, f"{name} {values[name]!r} is not an argument")
    if control.kind == "supervisor":
        config = ["-c", *fill_argv([control.config], values, host.name)] if control.config else []
        return ["supervisorctl", *config, action, unit]
    if control.kind == "systemd":
        return ["systemctl", action, unit]
    if control.kind == "docker":
        if action == "status":  # exits 1 with "No such object" for an unknown container
            return ["docker", "container", "inspect", "--format", "{{.State.Status}}", unit]
        return ["docker", "container", action, unit]
    template = getattr(control, action)
    if not template:
        raise CommandRejected(
            host.name, f"service {service.name!r} has no {action!r} template in its control"
        )
    return fill_argv(template, values, host.name)


def check_control_result(result: CommandResult, service: str) -> None:
    """Raise UnitNotFound if the manager does not know the unit, CommandRejected on failure."""
    output = f"{result.stderr}\n{result.stdout}".strip()
    unknown = result.exit_code == _SYSTEMCTL_NO_SUCH_UNIT and result.command.startswith("systemctl")
    if unknown or any(p.search(output) for p in _NOT_FOUND):
        raise UnitNotFound(
            result.host,
            f"the service manager does not know {service!r}: check the unit name in the config"
            f" ({_excerpt(output)})",
        )
    if not result.ok:
        raise CommandRejected(
            result.host,
            f"{result.command!r} for {service!r} failed with exit code {result.exit_code}:"
            f" {_excerpt(output) or '(no output)'}",
        )


def _excerpt(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _EXCERPT else text[: _EXCERPT - 1] + "…"
