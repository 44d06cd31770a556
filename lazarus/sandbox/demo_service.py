"""A tiny web service whose faults can be switched on: what the sandbox hosts run.

GET /health answers 200 "ok", 500 in ``error`` mode, and stalls (up to 600 s) in ``hang`` mode;
with ``--db ADDRESS:PORT`` it also needs its database, and answers 500 (logging the refusal, as
a real client library would) while nothing accepts connections there;
GET /metrics is Prometheus text; POST /fault?mode=hang|error|clear switches the mode. The mode
lives in memory only, so a restart clears it, as with a real wedged process. ``--release`` names
the release it runs (a ``current`` link): a release whose ``health`` file says 500 starts in
``error`` mode, so a restart does not mend it, a rollback does. While a file
``flapping`` is in its working folder, each start exits ``FLAP_AFTER`` seconds later (a crash
loop that a restart only mends for a moment).
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from lazarus.sandbox.host_faults import release_status

MODES = ("none", "hang", "error")
HANG_SECONDS = 600.0
FLAP_AFTER = 8.0


class _State:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.mode = "none"
        self.requests = 0
        self.released = threading.Event()  # set by "clear": lets hung requests go

    def set_mode(self, mode: str) -> None:
        with self.lock:
            self.mode = mode
            if mode == "hang":
                self.released.clear()
            else:
                self.released.set()


class _Handler(BaseHTTPRequestHandler):
    state: _State
    db: tuple[str, int] | None = None
    protocol_version = "HTTP/1.1"

    def _db_error(self) -> str:
        """Why the database cannot be reached ("" when it can, or when there is none)."""
        if self.db is None:
            return ""
        try:
            with socket.create_connection(self.db, timeout=0.5):
                return ""
        except OSError as exc:
            return f"could not connect to server: {exc.strerror or exc} ({self.db[0]}:{self.db[1]})"

    def do_GET(self) -> None:
        with self.state.lock:
            self.state.requests += 1
            mode = self.state.mode
        path = urlsplit(self.path).path
        if path == "/health":
            if mode == "hang":
                self.state.released.wait(HANG_SECONDS)
            if mode == "error":  # what a real service logs: the log collector's error template
                sys.stdout.write("ERROR health check failed: backend returned an error\n")
            db_error = "" if mode == "error" else self._db_error()
            if db_error:
                sys.stdout.write(f"ERROR {db_error}\n")
            failed = mode == "error" or bool(db_error)
            self._reply(500 if failed else 200, "error\n" if failed else "ok\n")
        elif path == "/metrics":
            self._reply(200, self._metrics(mode), "text/plain; version=0.0.4")
        else:
            self._reply(404, "not found\n")

    def do_POST(self) -> None:
        url = urlsplit(self.path)
        mode = parse_qs(url.query).get("mode", [""])[0]
        if url.path != "/fault" or mode not in ("hang", "error", "clear"):
            self._reply(400, "use POST /fault?mode=hang|error|clear\n")
            return
        self.state.set_mode("none" if mode == "clear" else mode)
        self._reply(200, f"mode {mode}\n")

    def _metrics(self, mode: str) -> str:
        lines = [
            "# TYPE demo_up gauge",
            "demo_up 1",
            "# TYPE demo_requests_total counter",
            f"demo_requests_total {self.state.requests}",
            "# TYPE demo_fault gauge",
            *(f'demo_fault{{mode="{m}"}} {int(m == mode)}' for m in MODES),
        ]
        return "\n".join(lines) + "\n"

    def _reply(self, status: int, body: str, content_type: str = "text/plain") -> None:
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        line = f"{self.log_date_time_string()} {self.address_string()} {format % args}\n"
        sys.stdout.write(line)
        sys.stdout.flush()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--release", type=Path, help="the `current` link of its releases")
    parser.add_argument("--db", default="", help="ADDRESS:PORT of the database it needs")
    args = parser.parse_args(argv)
    state = _State()
    if args.release and release_status(args.release) == 500:  # a broken release: always 500
        state.set_mode("error")
    address, _, port = args.db.rpartition(":")
    db = (address, int(port)) if args.db else None
    handler = type("Handler", (_Handler,), {"state": state, "db": db})
    server = ThreadingHTTPServer((args.host, args.port), handler)
    server.daemon_threads = True
    print(f"demo service on {args.host}:{args.port}", flush=True)
    if Path("flapping").exists():
        print(f"flapping: exiting in {FLAP_AFTER:g}s", flush=True)
        threading.Timer(FLAP_AFTER, os._exit, args=(1,)).start()
    server.serve_forever()


if __name__ == "__main__":
    main()
