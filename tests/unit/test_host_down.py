"""Host-level detection, the per-host back-off, and SSH metrics that isolate a failing host."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from lazarus.config import Host
from lazarus.detect.hosts import HOST_DOWN, detect_hosts, suspects, unreachable
from lazarus.errors import ConnectTimeout, HostUnreachable
from lazarus.model import CommandResult, Observation
from lazarus.remote.pool import BackoffExecutor, HostBackoff
from lazarus.sources import ssh_metrics

HOSTS = [Host(name=f"h{i}", address=f"10.0.0.{i}") for i in (1, 2, 3)]


def seen(host: str, ok: bool, service: str = "web", at: float = 100.0) -> Observation:
    return Observation(host, service, ok, "ok" if ok else "unreachable: no answer", at)


class Fleet:
    """An Executor where the hosts in ``dead`` never answer; counts dials per host."""

    def __init__(self, dead: set[str]):
        self.dead, self.dials = dead, {}

    def run(self, host: Host, argv: Sequence[str], *, timeout: float | None = None):
        self.dials[host.name] = self.dials.get(host.name, 0) + 1
        if host.name in self.dead:
            raise ConnectTimeout(host.name, "no answer")
        out = "0.5 0 0 1/1 1\n--lazarus-section--\nMemTotal: 100 kB\nMemAvailable: 50 kB\n"
        return CommandResult(host.name, "x", 0, out, "", 0.0)

    def close(self) -> None:
        pass


def test_only_a_host_whose_every_probe_fails_is_a_suspect() -> None:
    observations = [seen("h1", False), seen("h1", False, "db"), seen("h2", False), seen("h2", True)]
    assert [h.name for h in suspects(observations, HOSTS)] == ["h1"]


def test_host_down_needs_ssh_and_every_probe_failing_for_n_cycles() -> None:
    observations = [seen("h1", False, at=100.2), seen("h2", True, at=100.0)]
    down = unreachable(Fleet({"h1"}), suspects(observations, HOSTS), timeout=1)
    first, streaks = detect_hosts(observations, HOSTS, down, {}, failures=2)
    assert first == [] and streaks == {"host:h1": 1, "host:h2": 0}
    second, streaks = detect_hosts(observations, HOSTS, down, streaks, failures=2)
    assert [(a.host, a.service, a.symptom, a.at) for a in second] == [("h1", "", HOST_DOWN, 100.0)]
    assert "ConnectTimeout" in second[0].summary
    answered, _ = detect_hosts(observations, HOSTS, {}, streaks, failures=2)
    assert answered == []  # SSH answers: the services are down, not the host


def test_a_dead_host_is_backed_off_exponentially_and_capped() -> None:
    now = [0.0]
    backoff = HostBackoff(base=2, cap=10, clock=lambda: now[0])
    fleet = Fleet({"h1"})
    executor = BackoffExecutor(fleet, backoff)
    delays = []
    for _ in range(5):
        with pytest.raises(ConnectTimeout):
            executor.run(HOSTS[0], ["true"])
        with pytest.raises(HostUnreachable, match="not dialled"):  # at once, without a dial
            executor.run(HOSTS[0], ["true"])
        delays.append(backoff._failing["h1"].until - now[0])
        now[0] = backoff._failing["h1"].until
    assert delays == [2, 4, 8, 10, 10] and fleet.dials["h1"] == 5
    fleet.dead.clear()
    executor.run(HOSTS[0], ["true"])
    assert backoff.waiting("h1") == ""


def test_ssh_metrics_of_healthy_hosts_survive_a_dead_one() -> None:
    found = ssh_metrics.collect_all(Fleet({"h2"}), HOSTS)
    hosts = sorted({s.label("host") for s in found.samples})
    assert hosts == ["h1", "h3"]
    assert list(found.failed) == ["h2"] and "ConnectTimeout" in found.failed["h2"]


def test_a_host_back_is_dialled_at_once_but_a_hung_sshd_keeps_its_backoff() -> None:
    backoff = HostBackoff(base=2, cap=10, clock=lambda: 0.0)
    backoff.failed("cut", "ConnectTimeout")  # probes and SSH both fail: the host is gone
    backoff.failed("hung", "ConnectTimeout")  # its service answers, its sshd does not
    backoff.probed(answering={"hung"}, silent={"cut"})
    assert backoff.waiting("cut") and backoff.waiting("hung")
    backoff.probed(answering={"cut", "hung"}, silent=set())
    assert backoff.waiting("cut") == ""  # back: dialled now, not when its back-off ends
    assert backoff.waiting("hung") and backoff.failures("hung") == 1
