"""The notification sinks themselves: real SMTP and HTTP servers that record what they get."""

from __future__ import annotations

import json
import os
import smtplib
import subprocess
import sys
import urllib.error
import urllib.request
from email.message import EmailMessage
from pathlib import Path

import pytest

from lazarus.sandbox.sinks import SinkProcess, read_messages

pytestmark = pytest.mark.e2e


def send(sinks: SinkProcess, path: str, body: bytes, method: str = "POST") -> tuple[int, bytes]:
    request = urllib.request.Request(
        f"http://127.0.0.1:{sinks.http_port}{path}",
        data=body,
        method=method,
        headers={"Content-Type": "application/json", "X-Title": "hello"},
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as answer:
            return answer.status, answer.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def test_mail_is_decoded_with_both_alternative_parts(tmp_path: Path) -> None:
    message = EmailMessage()
    message["Subject"] = "Tür offen ✓"
    message["From"], message["To"] = "a@x.test", "b@x.test, c@x.test"
    message.set_content("plain line 1\nline 2\n")
    message.add_alternative("<p>html ✓</p>\n", subtype="html")
    with SinkProcess(tmp_path) as sinks:
        with smtplib.SMTP("127.0.0.1", sinks.smtp_port, timeout=5) as client:
            client.send_message(message)
        (mail,) = sinks.messages("mail")
    assert mail["subject"] == "Tür offen ✓"
    assert mail["from"] == "a@x.test" and mail["to"] == ["b@x.test", "c@x.test"]
    assert mail["text"] == "plain line 1\nline 2\n"
    assert mail["html"] == "<p>html ✓</p>\n"
    assert isinstance(mail["received_at"], float)


def test_http_requests_are_recorded_and_answered_200(tmp_path: Path) -> None:
    with SinkProcess(tmp_path) as sinks:
        assert send(sinks, "/hooks/abc?priority=high&tag=a&tag=b", b'{"text": "hi"}') == (
            200,
            b"{}",
        )
        assert send(sinks, "/put", b"not json", method="PUT")[0] == 200
        first, second = sinks.messages("http")
    assert first["method"] == "POST" and first["path"] == "/hooks/abc"
    assert first["query"] == {"priority": "high", "tag": ["a", "b"]}
    assert first["headers"]["X-Title"] == "hello"
    assert first["json"] == {"text": "hi"} and first["status"] == 200
    assert (second["method"], second["body"], second["json"]) == ("PUT", "not json", None)


def test_http_fail_answers_the_status_for_count_requests_then_heals(tmp_path: Path) -> None:
    with SinkProcess(tmp_path) as sinks:
        sinks.fail_http(503, times=2)
        statuses = [send(sinks, "/x", b"{}")[0] for _ in range(3)]
        sinks.fail_http(500)
        statuses += [send(sinks, "/x", b"{}")[0] for _ in range(2)]
        sinks.heal_http()
        statuses.append(send(sinks, "/x", b"{}")[0])
        recorded = [m["status"] for m in sinks.messages("http")]
    assert statuses == [503, 503, 200, 500, 500, 200]
    assert recorded == statuses


def test_stop_ends_each_process_by_its_pid(tmp_path: Path) -> None:
    with SinkProcess(tmp_path / "a") as first, SinkProcess(tmp_path / "b") as second:
        pids = (first.pid, second.pid)
        assert None not in pids and pids[0] != pids[1]
        second.stop()
        second.stop()  # twice is fine
        assert send(first, "/still-up", b"{}")[0] == 200
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)  # type: ignore[arg-type]


def test_the_sink_exits_with_a_reason_when_its_port_is_taken(tmp_path: Path) -> None:
    with SinkProcess(tmp_path / "a") as running:
        command = [
            sys.executable, "-m", "lazarus.sandbox.sinks", "--dir", str(tmp_path / "b"),
            "--smtp-port", str(running.smtp_port), "--http-port", str(running.http_port),
        ]  # fmt: skip
        done = subprocess.run(command, capture_output=True, text=True, timeout=30)
    assert done.returncode != 0
    assert "ready" not in done.stdout
    assert "address already in use" in done.stderr.lower()


def test_read_messages_of_an_empty_directory_is_empty(tmp_path: Path) -> None:
    assert read_messages(tmp_path, "mail") == [] and read_messages(tmp_path, "http") == []
    (tmp_path / "http.jsonl").write_text(json.dumps({"path": "/a"}) + "\n")
    assert read_messages(tmp_path, "http") == [{"path": "/a"}]
