"""apprise delivery against real SMTP and HTTP sinks on loopback: what arrives, and failures.

Each test marks its title with a fresh token and counts only the records that carry it, so the
session's shared sinks need no reset between tests.
"""

from __future__ import annotations

import logging
import socket
from typing import Any

import pytest

from lazarus.errors import DeliveryError
from lazarus.notify.deliver import Delivery, deliver
from lazarus.sandbox.sinks import SinkProcess

BODY = "**web@web-1** is down\n\n- detected: 2026-11-28T15:00:00Z\n- state: open"


def marked(sinks: SinkProcess, kind: str, mark: str) -> list[dict[str, Any]]:
    return [m for m in sinks.messages(kind) if mark in str(m)]  # type: ignore[arg-type]


def mail_url(sinks: SinkProcess) -> str:
    return f"mailto://127.0.0.1:{sinks.smtp_port}?from=lazarus@x.test&to=oncall@x.test"


def http_urls(sinks: SinkProcess) -> dict[str, str]:
    q = sinks.http_port
    return {
        "chat": f"mmost://127.0.0.1:{q}/chattoken1234",
        "json": f"json://127.0.0.1:{q}/lazarus/hook",
        "ntfy": f"ntfy://127.0.0.1:{q}/oncall-topic",
        "sms": f"signal://127.0.0.1:{q}/+15550001111/+15550002222",
    }


@pytest.mark.e2e
def test_mail_arrives_with_subject_and_both_parts(healthy: SinkProcess, mark: str) -> None:
    result = deliver("ops-email", [mail_url(healthy)], f"[CRITICAL] {mark}", BODY, timeout=5)
    assert result.ok and bool(result)
    (mail,) = marked(healthy, "mail", mark)
    assert mail["subject"] == f"[CRITICAL] {mark}"
    assert mail["from"] == "lazarus@x.test" and mail["to"] == ["oncall@x.test"]
    assert "web@web-1 is down" in mail["text"] and "2026-11-28T15:00:00Z" in mail["text"]
    assert "<strong>web@web-1</strong> is down" in mail["html"]  # markdown became HTML


@pytest.mark.e2e
def test_every_http_service_delivers_title_and_body(healthy: SinkProcess, mark: str) -> None:
    urls = http_urls(healthy)
    result = deliver("oncall", list(urls.values()), f"[CRITICAL] {mark}", BODY, timeout=5)
    assert result.ok, result.error
    assert [r.ok for r in result.per_url] == [True] * 4
    got = {m["path"]: m["json"] for m in marked(healthy, "http", mark)}
    assert len(got) == 4
    assert f"[CRITICAL] {mark}" in got["/hooks/chattoken1234"]["text"]
    assert "web@web-1" in got["/hooks/chattoken1234"]["text"]
    assert got["/lazarus/hook"]["title"] == f"[CRITICAL] {mark}"
    assert "2026-11-28T15:00:00Z" in got["/lazarus/hook"]["message"]
    assert got["/"]["topic"] == "oncall-topic" and got["/"]["title"] == f"[CRITICAL] {mark}"
    sms = got["/v2/send"]
    assert sms["number"] == "+15550001111" and sms["recipients"] == ["+15550002222"]
    assert mark in sms["message"] and "web@web-1" in sms["message"]


@pytest.mark.e2e
def test_one_receiver_with_mail_and_chat_counts_one_each(healthy: SinkProcess, mark: str) -> None:
    urls = [mail_url(healthy), http_urls(healthy)["chat"]]
    result = deliver("oncall", urls, mark, "text body", body_format="text", timeout=5)
    assert result == Delivery("oncall", True, result.per_url, "")
    assert len(result.per_url) == 2
    assert len(marked(healthy, "mail", mark)) == 1
    assert len(marked(healthy, "http", mark)) == 1


@pytest.mark.e2e
def test_a_secret_reference_is_resolved_and_never_shown_or_logged(
    healthy: SinkProcess,
    mark: str,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("LAZARUS_TEST_CHAT", f"mmost://127.0.0.1:{healthy.http_port}/s3cr3tT0ken")
    result = deliver("oncall", ["env:LAZARUS_TEST_CHAT"], mark, "b", timeout=5)
    assert result.ok
    assert [m["path"] for m in marked(healthy, "http", mark)] == ["/hooks/s3cr3tT0ken"]
    assert "s3cr3tT0ken" not in repr(result)
    assert any("Mattermost" in r.getMessage() for r in caplog.records)  # apprise did log ...
    assert not any("s3cr3tT0ken" in r.getMessage() for r in caplog.records)  # ... no token


@pytest.mark.e2e
def test_an_endpoint_answering_503_is_a_failure_with_its_status(
    healthy: SinkProcess, mark: str
) -> None:
    healthy.fail_http(503)
    result = deliver("oncall", [http_urls(healthy)["json"]], mark, "b", timeout=5)
    assert not result.ok and not result
    assert result.per_url[0].error == "HTTP 503"
    assert result.error.startswith("json://127.0.0.1:") and result.error.endswith(": HTTP 503")
    assert [m["status"] for m in marked(healthy, "http", mark)] == [503]


@pytest.mark.e2e
def test_a_second_try_succeeds_once_the_endpoint_recovers(healthy: SinkProcess, mark: str) -> None:
    healthy.fail_http(503, times=1)
    url = http_urls(healthy)["ntfy"]
    first, second = (deliver("oncall", [url], mark, "b", timeout=5) for _ in range(2))
    assert (first.ok, second.ok) == (False, True)
    assert [m["status"] for m in marked(healthy, "http", mark)] == [503, 200]


@pytest.mark.e2e
def test_one_dead_url_fails_the_receiver_but_not_the_others(
    healthy: SinkProcess, mark: str
) -> None:
    dead = f"mmost://127.0.0.1:{closed_port()}/deadtoken99"
    result = deliver("oncall", [dead, http_urls(healthy)["json"]], mark, "b", timeout=5)
    assert not result.ok
    assert [r.ok for r in result.per_url] == [False, True]
    assert "connection failed" in result.per_url[0].error
    assert "deadtoken99" not in repr(result)
    assert len(marked(healthy, "http", mark)) == 1


def test_nothing_listening_is_a_failure_not_an_exception() -> None:
    port = closed_port()
    for url in (
        f"json://127.0.0.1:{port}/x",
        f"mailto://127.0.0.1:{port}?from=a@x.test&to=b@x.test",
    ):
        result = deliver("oncall", [url], "t", "b", timeout=2)
        assert not result.ok
        assert "connection failed" in result.error


def test_a_silent_endpoint_fails_within_the_timeout() -> None:
    with socket.socket() as silent:  # accepts connections (backlog), never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        url = f"json://127.0.0.1:{silent.getsockname()[1]}/hook"
        result = deliver("oncall", [url], "t", "b", timeout=0.5)
    assert not result.ok
    assert result.per_url[0].error == "no answer within 0.5s"


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("nosuchscheme://host/s3cr3tT0ken", "nosuchscheme://***: apprise cannot parse it"),
        ("json://", "json://***: apprise cannot parse it"),
        ("mmost://host", "mmost://***: An invalid Mattermost Token"),
    ],
)
def test_a_url_apprise_cannot_use_is_a_delivery_error(url: str, says: str) -> None:
    with pytest.raises(DeliveryError) as caught:
        deliver("oncall", [url], "t", "b", timeout=1)
    assert caught.value.receiver == "oncall"
    assert says in str(caught.value)
    assert "s3cr3tT0ken" not in str(caught.value)


def test_a_bad_reference_names_the_reference_not_a_value(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LAZARUS_TEST_BAD_URL", "nosuchscheme://s3cr3tT0ken@host")
    monkeypatch.delenv("LAZARUS_TEST_UNSET", raising=False)
    with pytest.raises(DeliveryError, match=r"url #2 \(env:LAZARUS_TEST_BAD_URL\)") as caught:
        deliver("oncall", ["json://127.0.0.1:9/x", "env:LAZARUS_TEST_BAD_URL"], "t", "b", timeout=1)
    assert "s3cr3tT0ken" not in str(caught.value)
    with pytest.raises(DeliveryError, match="LAZARUS_TEST_UNSET is not set"):
        deliver("oncall", ["env:LAZARUS_TEST_UNSET"], "t", "b", timeout=1)
    with pytest.raises(DeliveryError, match="no URLs"):
        deliver("oncall", [], "t", "b", timeout=1)


def test_apprise_logs_no_url_it_could_not_parse(caplog: pytest.LogCaptureFixture) -> None:
    with pytest.raises(DeliveryError):
        deliver("oncall", ["nosuchscheme://user:pa55word@host/s3cr3tT0ken"], "t", "b", timeout=1)
    assert caplog.records  # apprise did complain ...
    messages = " ".join(r.getMessage() for r in caplog.records)
    assert "s3cr3tT0ken" not in messages and "pa55word" not in messages


def closed_port() -> int:
    """A loopback port with nothing listening (bound and released a moment ago)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
