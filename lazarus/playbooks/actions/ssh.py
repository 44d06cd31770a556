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
    idempotent = True  # a second restart (start, stop) leaves the service as the first did

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
    releases: str = Field(
        "", description="folder of the releases; default the service's releases.dir (inventory)"
    )

    @field_validator("releases")
    @classmethod
    def _not_from_labels(cls, value: str) -> str:
        if "{{" in value:
            raise ValueError(
                "a releases folder comes from the inventory (services[].releases) or is written"
                " out, never a template: an observation must not name what to change"
            )
        return value


@register
class ReleaseRollback(Action):
    """Point ``current`` at the release before the one it points to, atomically, then restart.

    Not destructive: both releases stay on disk and the flip is one atomic rename, so a wrong
    rollback is undone the same way. A bad release then heals from the watch without waiting
    for a person (its trigger needs a diagnosed ``bad_release``: a release change recorded on
    that service just before it broke); a playbook that wants a person says
    ``approval: {required: always}``."""

    name = "release.rollback"
    Params = RollbackParams

    def _argv(self, ctx: StepContext, params: RollbackParams) -> list[str]:
        folder, link = params.releases, "current"
        if not folder:
            releases = ctx.service(params.service).releases
            if releases is None:
                raise ctx.fail(f"service {params.service!r} has no releases in the inventory")
            folder, link = releases.folder(params.host), releases.current
        # a fixed script; the folder and the link's name are $1 and $2, never spliced into it
        script = (
            'set -eu; cd "$1"; now=$(basename "$(readlink "$2")"); '
            'prev=$(ls -1 | grep -vx "$2" | grep -vx ".$2.tmp" | sort | '
            'grep -B1 -x "$now" | head -n1); '
            '[ -n "$prev" ] && [ "$prev" != "$now" ] || '
            '{ echo "no release before $now" >&2; exit 3; }; '
            'ln -sfn "$prev" ".$2.tmp" && mv -T ".$2.tmp" "$2"; echo "$now -> $prev"'
        )
        return ["sh", "-c", script, "release.rollback", folder, link]

    def describe(self, ctx: StepContext, params: RollbackParams) -> tuple[str, list[str]]:
        return (params.host, self._argv(ctx, params))

    def run(self, ctx: StepContext, params: RollbackParams) -> StepResult:
        host = ctx.host(params.host)
        result = ctx.remote().run(host, self._argv(ctx, params), timeout=ctx.timeout)
        if not result.ok:
            raise CommandRejected(host.name, f"rollback failed: {result.stderr.strip()[:300]}")
        restart = REGISTRY["ssh.restart"].run(
            ctx, ControlParams(service=params.service, host=host.name)
        )
        moved = result.stdout.strip()
        return StepResult(f"{moved}; {restart.detail}", {"moved": moved})


class CleanParams(Params):
    path: str = Field("", description="one folder; default every clean path of the host")
    older_than: Duration
    host: InventoryRef = "{{ incident.host }}"

    @field_validator("path")
    @classmethod
    def _no_escape(cls, value: str) -> str:
        if ".." in PurePosixPath(value).parts or "\0" in value:
            raise ValueError(f"{value!r} may not contain '..': name the folder itself")
        return value


# Canonicalised on the target: `..` and symlinks are resolved before the prefix test, and
# find neither follows links (-P) nor leaves the file system (-xdev). $1 minutes, $2 folder,
# the rest the allowed roots. A folder that does not exist frees nothing.
_CLEAN = (
    'set -u; mins=$1; t=$2; shift 2; [ -e "$t" ] || { echo 0; exit 0; }; '
    'p=$(realpath -e -- "$t"); for r in "$@"; do r=$(realpath -e -- "$r" 2>/dev/null) || continue; '
    'case "$p/" in "$r"/*) find -P "$p" -xdev -type f -mmin +"$mins" -printf "%s\n" -delete'
    " | awk '{s += $1} END {print s + 0}'; exit 0;; esac; done; "
    'echo "$t is not under clean_paths" >&2; exit 5'
)


@register
class DiskClean(Action):
    """Delete files older than ``older_than`` under the host's configured clean paths (a
    ``path`` must resolve, on the host, inside one of them); report the bytes freed."""

    name = "disk.clean"
    Params = CleanParams

    def _argvs(self, ctx: StepContext, params: CleanParams) -> list[list[str]]:
        roots = ctx.clean_paths(params.host)
        if not roots:
            raise ctx.fail(f"no clean_paths configured for {params.host}")
        minutes = str(max(1, int(params.older_than // 60)))
        folders = [params.path] if params.path else roots
        return [["sh", "-c", _CLEAN, "disk.clean", minutes, f, *roots] for f in folders]

    def describe(self, ctx: StepContext, params: CleanParams) -> tuple[str, list[str]]:
        argvs = self._argvs(ctx, params)
        return (params.host, ["disk.clean", f"-mmin +{argvs[0][4]}", *(a[5] for a in argvs)])

    def run(self, ctx: StepContext, params: CleanParams) -> StepResult:
        host = ctx.host(params.host)
        freed = 0
        for argv in self._argvs(ctx, params):
            result = ctx.remote().run(host, argv, timeout=ctx.timeout)
            if not result.ok:
                raise CommandRejected(host.name, f"disk.clean: {result.stderr.strip()[:300]}")
            freed += int(result.stdout.strip() or 0)
        paths = params.path or ", ".join(ctx.clean_paths(params.host))
        text = f"{freed / (1 << 20):.1f} MiB ({freed} bytes)"
        return StepResult(
            f"freed {text} under {paths}", {"freed_bytes": freed, "freed": text, "paths": paths}
        )


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
