"""Lazarus under hostile input, injection and its own faults: the figures of bench/README.md.

    python bench/safety.py            # hostile input, injection, secrets (a minute, no root)
    python bench/safety.py --faults   # also the fault scenarios: e2e tests on the sandbox (root)

Hostile input: config, playbook, CSV and log files fed to the real commands in this process;
handled = exit 0 with a result or exit 2 with a one-line error, no traceback, under LIMIT s.
Injection: hostile incident hosts, services and labels through the playbook engine, and command
templates filled with hostile values run by ``sh`` the way sshd's shell runs them; held = the
step failed or the value stayed one argument, and no canary file appeared. Secrets: a token in
every kind of notification URL and config reference, a failing send, then every output, stored
error, log record and the store file grepped for it.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import logging
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from lazarus.cli import main as lazarus
from lazarus.config import Config, Control, load_config
from lazarus.errors import LazarusError
from lazarus.model import Anomaly, Incident, IncidentState
from lazarus.notify.send import attempt
from lazarus.notify.state import Alert, Notification, NotifyState
from lazarus.playbooks import Hooks, Playbook, StepContext, run
from lazarus.remote.control import control_argv
from lazarus.store import Store

LIMIT = 30.0
ROOT = Path(__file__).parents[1]
GOOD = yaml.safe_load((ROOT / "tests/fixtures/config/good/minimal.yaml").read_text())


def _bomb(levels: int = 9) -> bytes:
    lines = ['a: &a ["x","x","x","x","x","x","x","x","x"]']
    for i in range(levels):
        prev, name = chr(97 + i), chr(98 + i)
        lines.append(f"{name}: &{name} [{', '.join(['*' + prev] * 9)}]")
    return ("\n".join(lines) + "\n").encode()


def _config(**changes: object) -> bytes:
    data = yaml.safe_load(yaml.safe_dump(GOOD))
    for dotted, value in changes.items():
        node = data
        *parents, last = dotted.split(".")
        for key in parents:
            node = node.setdefault(key, {})
        node[last] = value
    return yaml.safe_dump(data).encode()


def hostile_files() -> list[tuple[str, str, bytes]]:
    """(command, case, file bytes): each file is handed to the command as a path."""
    svc = {"name": "api", "probe": {"http": "http://{address}/"}}
    configs = {
        "alias bomb": _bomb(),
        "recursive alias": b"a: &a [1, *a]\n",
        "10k brackets": b"a: " + b"[" * 10_000 + b"]" * 10_000 + b"\n",
        "invalid utf-8": b"inventory: \xff\xfe\n",
        "empty": b"",
        "a list": b"- 1\n",
        "python tag": b"a: !!python/object/apply:os.system ['true']\n",
        "6 MB": b"a: " + b"x" * (6 << 20) + b"\n",
        "interval 0": _config(**{"watch.interval": 0}),
        "interval nan": _config(**{"watch.interval": float("nan")}),
        "interval inf": _config(**{"watch.interval": float("inf")}),
        "duration 10^400": _config(**{"watch.interval": "1" + "0" * 400 + "s"}),
        "connect_timeout 0": _config(**{"inventory.ssh.connect_timeout": 0}),
        "fleet_cap 0": _config(**{"playbooks.fleet_cap": 0}),
        "regex (": _config(**{"playbooks.allow_commands": [{"argv0": "x", "args": ["("]}]}),
        "probe {addr}": _config(**{"inventory.services": [{**svc, "probe": {"http": "h/{addr}"}}]}),
        "probe timeout nan": _config(
            **{"inventory.services": [{**svc, "probe": {"http": "x", "timeout": float("nan")}}]}
        ),
        "unit with ;": _config(**{"inventory.services": [{**svc, "control": {"unit": "a;b"}}]}),
        "address -o": _config(
            **{"inventory.hosts": [{"name": "h", "address": "-oProxyCommand=x"}]}
        ),
        "out_of_band {addr}": _config(**{"playbooks.out_of_band": ["ipmi", "{addr}"]}),
    }
    book = {"version": 1, "name": "book", "trigger": {"matchers": ['symptom="x"']}}
    steps = {
        "wait .inf": {"id": "w", "action": "wait", "with": {"duration": float("inf")}},
        "retry_delay .nan": {
            "id": "w",
            "action": "wait",
            "with": {"duration": 1},
            "retry_delay": float("nan"),
        },
        "disk.clean ..": {
            "id": "c",
            "action": "disk.clean",
            "with": {"path": "/var/tmp/../etc", "older_than": "1d"},
        },
        "host -oProxyCommand": {
            "id": "r",
            "action": "ssh.restart",
            "with": {"host": "-oProxyCommand=x"},
        },
    }
    out = [("check", name, text) for name, text in configs.items()]
    out += [("playbook", name, text) for name, text in configs.items() if "bomb" in name]
    out += [
        ("playbook", n, yaml.safe_dump({**book, "steps": [s]}).encode()) for n, s in steps.items()
    ]
    out += [
        (
            "detect",
            "+-1e308",
            b"timestamp,value\n"
            + b"".join(
                f"2024-01-01 00:{i // 60:02d}:{i % 60:02d},{(-1) ** i}e308\n".encode()
                for i in range(300)
            ),
        ),
        (
            "detect",
            "200 kB field",
            b"timestamp,value\n2024-01-01 00:00:00," + b"9" * 200_000 + b"\n",
        ),
        ("detect", "no header", b"1,2\n"),
        ("detect", "NUL bytes", b"timestamp,value\n\x00\x00,\x00\n"),
        ("logs", "1 MB random bytes", os.urandom(1 << 20)),
        ("logs", "one 5 MB line", b"x" * (5 << 20)),
        ("logs-state", "--state holding a list", b"[1, 2, 3]"),
    ]
    return out


def _argv(command: str, path: Path, tmp: Path) -> list[str]:
    return {
        "check": ["check", "-c", str(path)],
        "playbook": ["playbook", "check", str(path.parent)],
        "detect": ["detect", "--input", str(path), "--output", str(tmp / "out.csv")],
        "logs": ["logs", "parse", "--input", str(path), "--output", str(tmp / "out.csv")],
        "logs-state": [
            "logs",
            "parse",
            "--input",
            str(ROOT / "README.md"),
            "--output",
            str(tmp / "out.csv"),
            "--state",
            str(path),
        ],
    }[command]


def hostile_input(tmp: Path) -> tuple[int, int, list[str]]:
    tried = handled = 0
    failures = []
    for command, case, text in hostile_files():
        path = tmp / "books" / "book.yaml" if command == "playbook" else tmp / f"in-{tried}"
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(text)
        out, err = io.StringIO(), io.StringIO()
        start = time.perf_counter()
        try:
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                code = lazarus(_argv(command, path, tmp))
        except BaseException as exc:  # a traceback is what is counted here
            code, err = -1, io.StringIO(f"Traceback: {type(exc).__name__}: {exc}")
        took = time.perf_counter() - start
        tried += 1
        ok = code in (0, 2) and "Traceback" not in err.getvalue() and took < LIMIT
        handled += ok
        if not ok:
            failures.append(f"{command} {case}: exit {code} in {took:.1f}s {err.getvalue()[:200]}")
    return tried, handled, failures


HOSTILE = [
    "-oProxyCommand=touch {c}",
    "web-1; touch {c}",
    "$(touch {c})",
    "`touch {c}`",
    "web-1\ntouch {c}",
    "' ; touch {c} ; '",
    "web-1|touch {c}",
    "../../{c}",
    "--help",
]


def injection(tmp: Path) -> tuple[int, int]:
    config = load_config(ROOT / "tests/fixtures/config/good/full.yaml")
    settings = config.playbooks.model_copy(
        update={"out_of_band": ["sh", "-c", f"echo {{host}} {{address}} >> {tmp}/oob"]}
    )
    tried = held = 0
    for n, raw in enumerate(HOSTILE):
        canary = tmp / f"canary-{n}"
        value = raw.format(c=canary)
        for field, action in (
            ("host", "ssh.restart"),
            ("host", "host.reboot"),
            ("service", "ssh.restart"),
            ("host", "ssh.run"),
        ):
            incident = Incident(
                1, "f", "web-1", "api", "x", "critical", IncidentState.OPEN, "", {}, 0.0
            )
            incident = Incident(**{**incident.__dict__, field: value})
            step = {"id": "s", "action": action}
            if action == "ssh.run":
                step["with"] = {"argv": ["true"]}
            book = Playbook.model_validate(
                {"version": 1, "name": "t", "trigger": {"matchers": ['a="b"']}, "steps": [step]}
            )
            ctx = StepContext(incident, config, settings=settings)
            result = run(book, ctx, Hooks(approve=lambda s, p: True))
            tried += 1
            held += result.status == "failed" and not canary.exists()
        control = Control.model_construct(
            kind="command", unit=value, restart="x", status="sh -c 'echo [{unit}]'"
        )
        tried += 1
        try:
            argv = control_argv(
                control, "status", config.inventory.services[0], config.inventory.hosts[0]
            )
        except LazarusError:
            held += not canary.exists()
            continue
        done = subprocess.run(
            ["sh", "-c", shlex.join(argv)], capture_output=True, text=True, timeout=10, check=False
        )
        held += done.stdout == f"[{value}]\n" and not canary.exists()
    return tried, held


SECRET = "Zq7SeCrEt4242"
URLS = [
    f"json://127.0.0.1:9/hooks/{SECRET}",
    f"mmost://127.0.0.1:9/{SECRET}",
    f"ntfy://127.0.0.1:9/{SECRET}",
    f"mailto://ops:{SECRET}@127.0.0.1:9?from=a@x.t&to=b@x.t",
    f"slack://T1ABCDEF/B2ABCDEF/{SECRET}abcdefghijk",
    f"form://127.0.0.1:9/?token={SECRET}",
    f"smseagle://{SECRET}@127.0.0.1:9/+15551234567",
]


def secrets(tmp: Path) -> tuple[int, int]:
    """(kinds of URL and reference planted, places where the secret was found)."""
    for i, url in enumerate(URLS):
        os.environ[f"LAZ_BENCH_URL{i}"] = url
    os.environ["LAZ_BENCH_DSN"] = f"postgresql://app:{SECRET}@127.0.0.1:9/app"
    (tmp / "key").write_text(f"-----BEGIN KEY-----\n{SECRET}\n")
    path = tmp / "secret.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "inventory": {
                    "ssh": {"key": f"file:{tmp / 'key'}"},
                    "hosts": [{"name": "web-1", "address": "127.0.0.1"}],
                    "databases": [
                        {
                            "name": "app",
                            "host": "web-1",
                            "kind": "postgres",
                            "dsn": "env:LAZ_BENCH_DSN",
                            "snapshots": {"dir": "snaps"},
                        }
                    ],
                },
                "notify": {
                    "receivers": [
                        {"name": "all", "urls": [f"env:LAZ_BENCH_URL{i}" for i in range(len(URLS))]}
                    ],
                    "timeout": "2s",
                },
                "state": {"path": "secret.db"},
            }
        )
    )
    logs = io.StringIO()
    handler = logging.StreamHandler(logs)
    logging.getLogger().addHandler(handler)
    logging.getLogger().setLevel(logging.DEBUG)
    out = io.StringIO()
    try:
        cfg: Config = load_config(path, check_secrets=True)
        store = Store(tmp / "secret.db")
        incident, _ = store.open_incident(
            Anomaly("web-1", "", "service_down", "critical", "down", 0.0, {"host": "web-1"})
        )
        message = Notification("k", "incident", "all", "t", "b", (Alert.of(incident),))
        outcome = attempt(NotifyState(store), cfg.notify, message, 1.0, final=True)
        store.close()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
            lazarus(["check", "-c", str(path)])
            lazarus(["incidents", "-c", str(path), "--show", str(incident.id)])
    finally:
        logging.getLogger().removeHandler(handler)
        logging.getLogger().setLevel(logging.WARNING)
    places = [
        outcome.error,
        repr(outcome.per_url),
        out.getvalue(),
        logs.getvalue(),
        *(f.read_bytes().decode("utf-8", "replace") for f in tmp.glob("secret.db*")),
    ]
    return len(URLS) + 2, sum(p.count(SECRET) for p in places)


def faults() -> tuple[int, int]:
    """The fault scenarios, each an e2e test on the sandbox: (run, passed)."""
    tests = ["tests/e2e/test_faults.py"]
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *tests],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    last = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else ""
    passed = int(last.split(" passed")[0].split()[-1]) if " passed" in last else 0
    failed = int(last.split(" failed")[0].split()[-1]) if " failed" in last else 0
    return passed + failed, passed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--faults", action="store_true", help="run the e2e fault scenarios too")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tried, handled, failures = hostile_input(Path(tmp))
        print(
            f"hostile inputs: {handled} of {tried} handled (clear error or result, no "
            f"traceback, under {LIMIT:g} s)"
        )
        for line in failures:
            print(f"  NOT handled: {line}")
        tried, held = injection(Path(tmp))
        print(f"injection attempts: {held} of {tried} held")
        kinds, found = secrets(Path(tmp))
        print(f"secrets: planted in {kinds} kinds of URL and reference, found in outputs: {found}")
    if args.faults:
        ran, passed = faults()
        print(f"fault scenarios (e2e): {passed} of {ran} survived with nothing lost")
    return 0


if __name__ == "__main__":
    sys.exit(main())
