"""Actions over SSH (service control, allow-listed commands, release rollback, disk cleanup)
and the out-of-band reboot. Every command is an argv list; the executor quotes each token."""

from __future__ import annotations

import shlex
import subprocess
from pathlib import PurePosixPath
from typing import Literal

from pydantic import Field, field_validator

from lazarus.commandline import fill_argv
from lazarus.config import Duration
from lazarus.errors import CommandRejected, CommandTimeout
from lazarus.playbooks.actions import REGISTRY, Action, InventoryRef, Params, StepResult, register
from lazarus.playbooks.context import StepContext
from lazarus.remote.control import check_control_result, control_argv


class ControlParams(Params):
    service: InventoryRef = "{{ incident.service }}"
    host: InventoryRef = "{{ incident.host }}"


class _Control(Action):
    Params = ControlParams
    verb: Literal["restart", "start", "stop", "status"]

    def describe(self, ctx: StepContext, params: ControlParams) -> tuple[str, list[str]]:
        service = ctx.service(params.service)
        return (
            params.host,
            control_argv(service.control, self.verb, service, ctx.host(params.host)),
        )

    def run(self, ctx: StepContext, params: ControlParams) -> StepResult:
        host, argv = self.describe(ctx, params)
        result = ctx.remote().run(ctx.host(host), argv, timeout=ctx.timeout)
        check_control_result(result, params.service)
        return StepResult(
            f"{self.verb} {params.service} on {host}: ok", {"stdout": result.stdout[-500:]}
        )


for _verb in ("restart", "start", "stop", "status"):
    register(type(f"Ssh{_verb.title()}", (_Control,), {"name": f"ssh.{_verb}", "verb": _verb}))


class RunParams(Params):
    argv: list[str] = Field(min_length=1)
    host: InventoryRef = "{{ incident.host }}"


@register
class SshRun(Action):
    """Only commands the config allow-lists; anything else is rejected before connecting."""

    name = "ssh.run"
    Params = RunParams

    def describe(self, ctx: StepContext, params: RunParams) -> tuple[str, list[str]]:
        return (params.host, list(params.argv))

    def run(self, ctx: StepContext, params: RunParams) -> StepResult:
        argv = list(params.argv)
        if not any(rule.allows(argv) for rule in ctx.settings.allow_commands):
            raise CommandRejected(params.host, f"{shlex.join(argv)!r} is not in allow_commands")
        result = ctx.remote().run(ctx.host(params.host), argv, timeout=ctx.timeout)
        if not result.ok:
            raise CommandRejected(params.host, f"{shlex.join(argv)!r} exited {result.exit_code}")
        return StepResult(f"ran {shlex.join(argv)} on {params.host}", {"stdout": result.stdout})


class RollbackParams(ControlParams):
    releases: str = Field(description="folder holding one sub-folder per release and `current`")


@register
class ReleaseRollback(Action):
    """Point ``current`` at the release before the one it points to, atomically, then restart."""

    name = "release.rollback"
    Params = RollbackParams
    destructive = True

    def _argv(self, releases: str) -> list[str]:
        # a fixed script; the releases folder is passed as $1, never spliced into the text
        script = (
            'set -eu; cd "$1"; now=$(basename "$(readlink current)"); '
            "prev=$(ls -1 | grep -vx current | grep -vx .current.tmp | sort | "
            'grep -B1 -x "$now" | head -n1); '
            '[ -n "$prev" ] && [ "$prev" != "$now" ] || '
            '{ echo "no release before $now" >&2; exit 3; }; '
            'ln -sfn "$prev" .current.tmp && mv -T .current.tmp current; echo "$now -> $prev"'
        )
        return ["sh", "-c", script, "release.rollback", releases]

    def describe(self, ctx: StepContext, params: RollbackParams) -> tuple[str, list[str]]:
        return (params.host, self._argv(params.releases))

    def run(self, ctx: StepContext, params: RollbackParams) -> StepResult:
        host = ctx.host(params.host)
        result = ctx.remote().run(host, self._argv(params.releases), timeout=ctx.timeout)
        if not result.ok:
            raise CommandRejected(host.name, f"rollback failed: {result.stderr.strip()[:300]}")
        restart = REGISTRY["ssh.restart"].run(
            ctx, ControlParams(service=params.service, host=host.name)
        )
        return StepResult(f"{result.stdout.strip()}; {restart.detail}")


class CleanParams(Params):
    path: str
    older_than: Duration
    host: InventoryRef = "{{ incident.host }}"

    @field_validator("path")
    @classmethod
    def _no_escape(cls, value: str) -> str:
        if ".." in PurePosixPath(value).parts or "\0" in value:
            raise ValueError(f"{value!r} may not contain '..': name the folder itself")
        return value


@register
class DiskClean(Action):
    """Delete files older than ``older_than`` under a configured path; report the bytes freed."""

    name = "disk.clean"
    Params = CleanParams

    def _argv(self, params: CleanParams) -> list[str]:
        minutes = max(1, int(params.older_than // 60))
        script = (
            'find "$1" -xdev -type f -mmin +"$2" -printf "%s\\n" -delete'
            " | awk '{s += $1} END {print s + 0}'"
        )
        return ["sh", "-c", script, "disk.clean", params.path, str(minutes)]

    def describe(self, ctx: StepContext, params: CleanParams) -> tuple[str, list[str]]:
        return (params.host, self._argv(params))

    def run(self, ctx: StepContext, params: CleanParams) -> StepResult:
        allowed = [p.rstrip("/") for p in ctx.settings.clean_paths]
        if not any(
            params.path.rstrip("/") == p or params.path.startswith(p + "/") for p in allowed
        ):
            raise CommandRejected(params.host, f"{params.path!r} is not under clean_paths")
        result = ctx.remote().run(ctx.host(params.host), self._argv(params), timeout=ctx.timeout)
        if not result.ok:
            raise CommandRejected(params.host, f"disk.clean failed: {result.stderr.strip()[:300]}")
        freed = int(result.stdout.strip() or 0)
        return StepResult(f"freed {freed} bytes under {params.path}", {"freed_bytes": freed})


class RebootParams(Params):
    host: InventoryRef = "{{ incident.host }}"
    timeout: Duration = Field(60.0, gt=0)


@register
class HostReboot(Action):
    """Run the configured out-of-band command (IPMI, cloud API...): the host may be unreachable.

    It runs on the Lazarus machine, so the host must be an inventory host and ``{address}`` is
    the inventory's address, never a value from the incident."""

    name = "host.reboot"
    Params = RebootParams
    destructive = True

    def describe(self, ctx: StepContext, params: RebootParams) -> tuple[str, list[str]]:
        if not ctx.settings.out_of_band:
            raise ctx.fail("host.reboot needs playbooks.out_of_band in the config")
        host = ctx.host(params.host)
        values = {"host": host.name, "address": host.address}
        return ("local", fill_argv(ctx.settings.out_of_band, values, host.name))

    def run(self, ctx: StepContext, params: RebootParams) -> StepResult:
        _, argv = self.describe(ctx, params)
        try:
            done = subprocess.run(
                argv, capture_output=True, text=True, timeout=params.timeout, check=False
            )
        except subprocess.TimeoutExpired:
            raise CommandTimeout(params.host, "the out-of-band reboot timed out") from None
        except OSError as exc:
            raise CommandRejected(
                params.host, f"cannot run the out-of-band command: {exc}"
            ) from None
        if done.returncode != 0:
            raise CommandRejected(params.host, f"out-of-band reboot exited {done.returncode}")
        return StepResult(f"reboot of {params.host} requested out of band")
