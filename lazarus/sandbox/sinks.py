"""Real notification sinks on loopback: an SMTP server and an HTTP capture server.

Notifications are tested against real protocol endpoints, not mocks: apprise speaks SMTP to
the aiosmtpd server and HTTP to the capture server, and each receipt becomes one JSON line in
``DIR/mail.jsonl`` or ``DIR/http.jsonl``. A file ``DIR/http.fail`` holding ``STATUS [COUNT]``
makes the HTTP sink answer STATUS (COUNT times, or until the file goes) so that "endpoint down"
and "retry, then succeed" are tested against the same real server.

Run: ``python -m lazarus.sandbox.sinks --dir DIR --smtp-port P --http-port Q [--host H]``;
it prints ``ready`` once both listen and stops on SIGTERM/SIGINT.
"""

from __future__ import annotations

import argparse
import contextlib
import email
import json
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from email import policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Literal
from urllib.parse import parse_qs, urlsplit

from aiosmtpd.controller import Controller

FILES = {"mail": "mail.jsonl", "http": "http.jsonl"}
FAIL_FILE = "http.fail"
READY = "ready"
_MAX_BODY = 10 * 1024 * 1024


class _JsonLines:
    """Appends one JSON document per line; a lock keeps concurrent receipts whole."""

    def __init__(self, path: Path):
        self.path = path
        self.lock = threading.Lock()

    def append(self, record: dict[str, Any]) -> None:
        line = json.dumps(record, ensure_ascii=False) + "\n"
        with self.lock, self.path.open("a", encoding="utf-8") as out:
            out.write(line)


class _MailHandler:
    """aiosmtpd handler: every accepted mail becomes one record."""

    def __init__(self, log: _JsonLines):
        self.log = log

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.log.append(_mail_record(envelope.mail_from, envelope.rcpt_tos, envelope.content))
        return "250 Message accepted for delivery"


def _mail_record(sender: str, recipients: list[str], content: bytes) -> dict[str, Any]:
    """Decode the MIME message; both parts of a multipart/alternative are kept."""
    message = email.message_from_bytes(content, policy=policy.default)
    assert isinstance(message, EmailMessage)
    record: dict[str, Any] = {
        "from": sender,
        "to": list(recipients),
        "subject": str(message.get("subject", "")),
        "text": "",
        "received_at": time.time(),
    }
    plain = message.get_body(preferencelist=("plain",))
    if plain is not None:
        record["text"] = _lf(plain.get_content())
    html = message.get_body(preferencelist=("html",))
    if html is not None:
        record["html"] = _lf(html.get_content())
    return record


def _lf(text: str) -> str:
    """SMTP carries CRLF line ends; records use plain newlines."""
    return text.replace("\r\n", "\n")


class _CaptureHandler(BaseHTTPRequestHandler):
    """Records each POST/PUT; answers 200 ``{}`` unless ``http.fail`` asks for a failure."""

    server: _CaptureServer

    def do_POST(self) -> None:
        self._capture()

    def do_PUT(self) -> None:
        self._capture()

    def _capture(self) -> None:
        length = min(int(self.headers.get("Content-Length") or 0), _MAX_BODY)
        body = self.rfile.read(length).decode("utf-8", errors="replace")
        status = self.server.next_status()
        url = urlsplit(self.path)
        self.server.log.append(
            {
                "method": self.command,
                "path": url.path,
                "query": {k: v[0] if len(v) == 1 else v for k, v in parse_qs(url.query).items()},
                "headers": dict(self.headers.items()),
                "body": body,
                "json": _json_or_none(body),
                "status": status,
                "received_at": time.time(),
            }
        )
        answer = b"{}" if status < 400 else b'{"error": "the sink fails on purpose"}'
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the JSON lines are the record."""


class _CaptureServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], directory: Path):
        super().__init__(address, _CaptureHandler)
        self.log = _JsonLines(directory / FILES["http"])
        self.fail_file = directory / FAIL_FILE

    def next_status(self) -> int:
        """200, or the status ``http.fail`` asks for (consuming one of its COUNT failures)."""
        with self.log.lock:
            try:
                words = self.fail_file.read_text().split()
            except OSError:
                return 200
            if not words:
                return 200
            status = int(words[0])
            if len(words) > 1:
                left = int(words[1]) - 1
                if left > 0:
                    self.fail_file.write_text(f"{status} {left}\n")
                else:
                    self.fail_file.unlink()
            return status


def _json_or_none(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return None


def read_messages(dir: Path, kind: Literal["mail", "http"]) -> list[dict[str, Any]]:
    """Every record the sink wrote so far, oldest first (HTTP records carry their ``status``)."""
    path = Path(dir) / FILES[kind]
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def serve(directory: Path, host: str, smtp_port: int, http_port: int) -> None:
    """Run both sinks until SIGTERM or SIGINT."""
    directory.mkdir(parents=True, exist_ok=True)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    with contextlib.ExitStack() as cleanup:
        http = _CaptureServer((host, http_port), directory)  # binds now: a taken port fails fast
        cleanup.callback(http.server_close)
        smtp = Controller(
            _MailHandler(_JsonLines(directory / FILES["mail"])), hostname=host, port=smtp_port
        )
        smtp.start()
        cleanup.callback(smtp.stop)
        threading.Thread(target=http.serve_forever, kwargs={"poll_interval": 0.2}).start()
        cleanup.callback(http.shutdown)
        print(READY, flush=True)
        stop.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lazarus.sandbox.sinks", description=__doc__)
    parser.add_argument("--dir", type=Path, required=True, help="where the JSON lines go")
    parser.add_argument("--smtp-port", type=int, required=True)
    parser.add_argument("--http-port", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    args = parser.parse_args(argv)
    try:
        serve(args.dir, args.host, args.smtp_port, args.http_port)
    except OSError as exc:
        print(f"notification sinks cannot listen on {args.host}: {exc}", file=sys.stderr)
        return 1
    return 0


# --- running the sinks as a child process -----------------------------------------------------


def free_port(host: str = "127.0.0.1") -> int:
    """A port the kernel just had free on ``host`` (the child binds it a moment later)."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


class SinkProcess:
    """Both sinks in a child process on free loopback ports; ``stop()`` ends it by its PID::

    with SinkProcess(tmp_path) as sinks:
        deliver("oncall", [f"json://127.0.0.1:{sinks.http_port}/hook"], ...)
        sinks.messages("http")
    """

    def __init__(self, dir: Path, *, host: str = "127.0.0.1"):
        self.dir = Path(dir)
        self.host = host
        self.smtp_port = 0
        self.http_port = 0
        self._proc: subprocess.Popen[str] | None = None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def start(self, timeout: float = 15.0, attempts: int = 3) -> SinkProcess:
        """Start on fresh ports; a port taken in between costs one more attempt, not a failure."""
        self.dir.mkdir(parents=True, exist_ok=True)
        reason = ""
        for _ in range(attempts):
            self.smtp_port, self.http_port = free_port(self.host), free_port(self.host)
            reason = self._spawn(timeout)
            if not reason:
                return self
        raise RuntimeError(f"the notification sinks did not start: {reason}")

    def _spawn(self, timeout: float) -> str:
        """Start the child and wait for ``ready``; '' on success, else why it failed."""
        command = [
            sys.executable, "-m", "lazarus.sandbox.sinks", "--dir", str(self.dir),
            "--host", self.host, "--smtp-port", str(self.smtp_port),
            "--http-port", str(self.http_port),
        ]  # fmt: skip
        log = self.dir / "sinks.log"
        with log.open("a") as stderr:
            self._proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=stderr, text=True)
        assert self._proc.stdout is not None
        why = f"no '{READY}' within {timeout:g}s"
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            if not select.select([self._proc.stdout], [], [], left)[0]:
                break
            line = self._proc.stdout.readline()
            if line.strip() == READY:
                return ""
            if not line:  # the child exited; its last words are in the log
                lines = log.read_text(errors="replace").strip().splitlines()
                why = lines[-1] if lines else "it exited without a word"
                break
        self.stop()
        return why

    def restart(self, timeout: float = 15.0) -> None:
        """Start again on the same ports after ``stop()``: a mail server back from an outage."""
        reason = self._spawn(timeout)
        if reason:
            raise RuntimeError(f"the notification sinks did not start again: {reason}")

    def stop(self, timeout: float = 5.0) -> None:
        """SIGTERM the child by PID, SIGKILL it if it lingers; safe to call twice."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout)
        if proc.stdout:
            proc.stdout.close()

    def messages(self, kind: Literal["mail", "http"]) -> list[dict[str, Any]]:
        return read_messages(self.dir, kind)

    def fail_http(self, status: int, times: int | None = None) -> None:
        """Make the HTTP sink answer ``status`` (``times`` requests, or until ``heal_http``)."""
        (self.dir / FAIL_FILE).write_text(f"{status} {times}\n" if times else f"{status}\n")

    def heal_http(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            (self.dir / FAIL_FILE).unlink()

    def __enter__(self) -> SinkProcess:
        return self.start() if self._proc is None else self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


if __name__ == "__main__":
    sys.exit(main())
