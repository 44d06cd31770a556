"""The HTTP endpoint: every route authenticated, bodies capped before they are read."""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator

import pytest

from lazarus.secrets import Secret
from lazarus.web import HttpError, Request, Response, WebServer

TOKEN = "s3cret-token"


@pytest.fixture
def server() -> Iterator[WebServer]:
    web = WebServer("127.0.0.1", 0, Secret(TOKEN), max_body=1000)
    seen: list[Request] = []

    def echo(request: Request) -> Response:
        seen.append(request)
        body = request.json()
        if not isinstance(body, dict):
            raise HttpError(400, "body: not an object")
        return Response(200, {"got": body})

    web.route("POST", "/echo", echo)
    web.route("GET", "/open", lambda r: Response(200, {"ok": True}), auth=lambda r: True)
    with web:
        yield web


def call(
    web: WebServer, method: str, path: str, body: bytes = b"", token: str | None = TOKEN
) -> tuple[int, dict]:
    host, port = web.url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    conn.request(method, path, body=body, headers=headers)
    response = conn.getresponse()
    status, data = response.status, json.loads(response.read())
    conn.close()
    return status, data


def test_a_route_answers_with_the_right_token(server: WebServer) -> None:
    assert call(server, "POST", "/echo", b'{"a": 1}') == (200, {"got": {"a": 1}})


@pytest.mark.parametrize("token", [None, "wrong", TOKEN + "x", ""])
def test_a_missing_or_wrong_token_is_401(server: WebServer, token: str | None) -> None:
    assert call(server, "POST", "/echo", b'{"a": 1}', token=token) == (
        401,
        {"error": "not authenticated"},
    )


def test_a_route_may_authenticate_its_own_way(server: WebServer) -> None:
    assert call(server, "GET", "/open", token=None) == (200, {"ok": True})


def test_bad_json_is_400_naming_the_body(server: WebServer) -> None:
    status, data = call(server, "POST", "/echo", b"{nope")
    assert status == 400 and data["error"].startswith("body: not JSON")
    assert call(server, "POST", "/echo", b"[1]") == (400, {"error": "body: not an object"})


def test_a_body_over_the_limit_is_refused_unread(server: WebServer) -> None:
    status, data = call(server, "POST", "/echo", b"x" * 1001)
    assert status == 413 and "1001 bytes" in data["error"]


def test_unknown_paths_and_methods(server: WebServer) -> None:
    assert call(server, "POST", "/nothing")[0] == 404
    assert call(server, "GET", "/echo")[0] == 405
