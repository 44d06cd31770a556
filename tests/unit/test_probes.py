"""Probe kinds other than HTTP, and the detail words the detectors read from them."""

from __future__ import annotations

import socket
from collections.abc import Sequence

import pytest

from lazarus.config import Host, Probe
from lazarus.detect.threshold import probe_symptom
from lazarus.errors import CommandTimeout, ConnectTimeout
from lazarus.model import CommandResult
from lazarus.sources.probes import Instance, check, check_all

HOST = Host(name="h1", address="127.0.0.1")


@pytest.fixture
def listening() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield s.getsockname()[1]


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_tcp_probe_passes_on_a_listener_and_is_down_when_refused(listening: int) -> None:
    up = check(Instance(HOST, "cache", Probe(tcp=f"{{address}}:{listening}")))
    assert up.ok and up.detail == "ok"
    down = check(Instance(HOST, "cache", Probe(tcp=f"127.0.0.1:{closed_port()}")))
    assert not down.ok and down.detail.startswith("refused")
    assert probe_symptom(down) == "service_down"


def test_postgres_probe_reads_a_stopped_server_as_refused() -> None:
    seen = check(
        Instance(HOST, "db", Probe(postgres=f"postgresql://u:pw@{{address}}:{closed_port()}/x"))
    )
    assert not seen.ok and seen.detail.startswith("refused")
    assert "pw" not in seen.detail


class Runner:
    """An Executor answering with a fixed exit code or error, recording what it was asked."""

    def __init__(self, code: int = 0, error: Exception | None = None):
        self.code, self.error, self.argvs = code, error, []

    def run(self, host: Host, argv: Sequence[str], *, timeout: float | None = None):
        self.argvs.append(list(argv))
        if self.error:
            raise self.error
        return CommandResult(host.name, " ".join(argv), self.code, "", "", 0.0)

    def close(self) -> None:
        pass


@pytest.mark.parametrize(
    ("runner", "ok", "word", "symptom"),
    [
        (Runner(0), True, "ok", None),
        (Runner(3), False, "down", "service_down"),
        (Runner(error=ConnectTimeout("h1", "no answer")), False, "unreachable", "service_down"),
        (Runner(error=CommandTimeout("h1", "slow")), False, "timeout", "service_unhealthy"),
    ],
)
def test_command_probe_runs_over_the_executor(runner, ok, word, symptom) -> None:
    probe = Probe(command=["pg_isready", "-h", "{address}"])
    (seen,) = check_all([Instance(HOST, "db", probe)], executor=runner)
    assert runner.argvs == [["pg_isready", "-h", "127.0.0.1"]]
    assert seen.ok is ok and seen.detail.startswith(word)
    if symptom:
        assert probe_symptom(seen) == symptom


def test_a_probe_takes_exactly_one_kind() -> None:
    with pytest.raises(ValueError, match="exactly one of"):
        Probe(http="http://x/", tcp="x:1")
    with pytest.raises(ValueError, match="unknown placeholder"):
        Probe(command=["ping", "{addr}"])
