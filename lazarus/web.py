"""The HTTP endpoint `lazarus serve` opens: a few JSON routes, every one authenticated.

Standard library only (``ThreadingHTTPServer``): the routes are small and few, so a framework
would add more than it saves. Each route names its own check; the default is the bearer token
from the config (compared in constant time). A route that authenticates otherwise (a signed
link in a message) passes its own ``auth``. Bodies are capped before they are read, so a huge
request costs nothing but its headers.

    server = WebServer("127.0.0.1", 9095, token)
    server.route("POST", "/alerts/alertmanager", handler)   # handler(Request) -> Response
    server.start(); ...; server.stop()
"""

from __future__ import annotations

import hmac
import json
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from lazarus.errors import LazarusError
from lazarus.secrets import Secret

log = logging.getLogger(__name__)

MAX_BODY = 1_000_000  # an Alertmanager batch of ~1,000 alerts; anything bigger is refused (413)
REQUEST_TIMEOUT = 10.0  # seconds a client may take to send its request
SHUTDOWN_POLL = 0.1  # seconds between shutdown checks, so stop() returns at once (default 0.5)


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # names lower-cased
    body: bytes

    def json(self) -> Any:
        """The body as JSON; a 400 naming the problem when it is not."""
        try:
            return json.loads(self.body or b"null")
        except (ValueError, UnicodeDecodeError) as exc:
            raise HttpError(400, f"body: not JSON ({exc})") from None


@dataclass(frozen=True)
class Response:
    """JSON ``body``, or a page when ``html`` is set (the signed links' confirm pages)."""

    status: int = 200
    body: dict[str, Any] = field(default_factory=dict)
    html: str | None = None


class HttpError(LazarusError):
    """Answer the request with ``status`` and ``{"error": message}``."""

    def __init__(self, status: int, message: str):
        self.status = status
        super().__init__(message)


Handler = Callable[[Request], Response]
Auth = Callable[[Request], bool]  # may raise HttpError to say why it refuses


def bearer(token: Secret) -> Auth:
    """A check that the request carries ``Authorization: Bearer <token>``."""
    expected = f"Bearer {token.reveal()}".encode()

    def check(request: Request) -> bool:
        return hmac.compare_digest(request.headers.get("authorization", "").encode(), expected)

    return check


class WebServer:
    """Routes by exact (method, path); serves each request on its own thread."""

    def __init__(self, host: str, port: int, token: Secret, max_body: int = MAX_BODY):
        self._routes: dict[tuple[str, str], tuple[Handler, Auth]] = {}
        self._bearer = bearer(token)
        self.max_body = max_body
        self._httpd = ThreadingHTTPServer((host, port), _handler_class(self))
        self._httpd.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def route(self, method: str, path: str, handler: Handler, auth: Auth | None = None) -> None:
        """Serve ``method path`` with ``handler``; ``auth`` replaces the bearer-token check."""
        self._routes[(method.upper(), path)] = (handler, auth or self._bearer)

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": SHUTDOWN_POLL},
            name="lazarus-web",
            daemon=True,
        )
        self._thread.start()
        log.info("serving %s on %s", sorted(p for _, p in self._routes), self.url)

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(10)

    def __enter__(self) -> WebServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def dispatch(
        self, method: str, target: str, headers: dict[str, str], read: ReadBody
    ) -> Response:
        """Route one request; every refusal is a Response, never an exception."""
        url = urlsplit(target)
        found = self._routes.get((method, url.path))
        if found is None:
            known = any(path == url.path for _, path in self._routes)
            return _error(405 if known else 404, f"no route {method} {url.path}")
        handler, auth = found
        length = headers.get("content-length", "0")
        if not length.isdigit():
            return _error(400, "Content-Length: not a number")
        if int(length) > self.max_body:
            return _error(413, f"body: {length} bytes is over the {self.max_body} byte limit")
        request = Request(method, url.path, parse_qs(url.query), headers, read(int(length)))
        try:
            if not auth(request):
                return _error(401, "not authenticated")
            return handler(request)
        except HttpError as exc:
            return _error(exc.status, str(exc))
        except Exception:
            log.exception("%s %s failed", method, url.path)
            return _error(500, "internal error; see the lazarus serve log")


ReadBody = Callable[[int], bytes]
_PAGE_POLICY = "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'"


def _error(status: int, message: str) -> Response:
    return Response(status, {"error": message})


def _handler_class(server: WebServer) -> type[BaseHTTPRequestHandler]:
    class _Handler(BaseHTTPRequestHandler):
        timeout = REQUEST_TIMEOUT
        server_version = "lazarus"
        protocol_version = "HTTP/1.0"  # one request per connection: a refused body stays unread

        def _serve(self) -> None:
            headers = {k.lower(): v for k, v in self.headers.items()}
            response = server.dispatch(self.command, self.path, headers, self.rfile.read)
            self.send_response(response.status)
            if response.html is None:
                data = json.dumps(response.body).encode()
                self.send_header("Content-Type", "application/json")
            else:  # no scripts, no frames, no referrer (the URL is a signed link)
                data = response.html.encode()
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Security-Policy", _PAGE_POLICY)
                self.send_header("Referrer-Policy", "no-referrer")
                self.send_header("X-Frame-Options", "DENY")
                self.send_header("Cache-Control", "no-store")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PUT = do_DELETE = _serve

        def log_message(self, format: str, *args: Any) -> None:
            log.info("%s %s", self.address_string(), format % args)

    return _Handler
