"""HTTP probes and verification against a real HTTP server on loopback."""

from __future__ import annotations

import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import pytest

from lazarus.config import Host, Probe
from lazarus.errors import ActionError
from lazarus.model import Incident, IncidentState
from lazarus.playbooks import StepContext
from lazarus.playbooks.actions.basic import HttpCheckParams, poll
from lazarus.sources.http import ProbeTarget, probe
from lazarus.sources.probes import Instance, check_all


class Handler(BaseHTTPRequestHandler):
    statuses: ClassVar[list[int]] = []

    def do_GET(self) -> None:
        if self.path == "/slow":
            threading.Event().wait(2)
        status = self.statuses.pop(0) if self.statuses else 200
        self.send_response(status)
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    # a short poll: shutdown() waits for the next one (0.5 s by default, at every teardown)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    Handler.statuses = []
    yield httpd.server_address[1]
    httpd.shutdown()
    httpd.server_close()
    thread.join(timeout=5)


def target(url: str, timeout: float = 1.0) -> ProbeTarget:
    return ProbeTarget(host="h1", service="web", url=url, timeout=timeout, expect_status=200)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_probe_outcomes(server: int) -> None:
    Handler.statuses = [500]
    assert probe(target(f"http://127.0.0.1:{server}/health")).detail == "status 500"
    assert probe(target(f"http://127.0.0.1:{server}/health")).ok
    assert probe(target(f"http://127.0.0.1:{server}/slow", 0.3)).detail.startswith("timeout")
    assert probe(target(f"http://127.0.0.1:{free_port()}/health")).detail.startswith("refused")


def test_check_all_keeps_order_and_never_raises(server: int) -> None:
    host = Host(name="h1", address="127.0.0.1")
    urls = [f"http://{{address}}:{server}/health", "http://127.0.0.1:1/x", "not a url at all"]
    results = check_all([Instance(host, "web", Probe(http=url)) for url in urls])
    assert [r.ok for r in results] == [True, False, False]


def test_http_check_waits_for_health_then_gives_up(server: int) -> None:
    ctx = StepContext(Incident(1, "web@h1/x", "h1", "web", "service_down", "critical",
                               IncidentState.OPEN, "down", {}, 0.0))  # fmt: skip
    url = f"http://127.0.0.1:{server}/health"
    Handler.statuses = [503, 503]
    assert "answered 200" in poll(ctx, HttpCheckParams(within=5, interval=0.05), url).detail
    Handler.statuses = [503] * 100
    with pytest.raises(ActionError, match=r"did not answer 200 within 0.3s \(last: status 503\)"):
        poll(ctx, HttpCheckParams(within=0.3, interval=0.05), url)
