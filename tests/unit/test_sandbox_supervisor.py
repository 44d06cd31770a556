"""The sandbox asks supervisord for a program's PID over its XML-RPC unix socket, as
supervisorctl does: a stand-in server here answers as supervisord's getProcessInfo does."""

from __future__ import annotations

import socket
import socketserver
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from xmlrpc.server import SimpleXMLRPCDispatcher, SimpleXMLRPCRequestHandler

import pytest

from lazarus.sandbox.supervisor import program_pid


class _Handler(SimpleXMLRPCRequestHandler):
    disable_nagle_algorithm = False  # a TCP option: a unix socket refuses it

    def address_string(self) -> str:
        return "unix"


class _Supervisord(
    socketserver.ThreadingMixIn, socketserver.UnixStreamServer, SimpleXMLRPCDispatcher
):
    daemon_threads = True

    def __init__(self, path: str):
        socketserver.UnixStreamServer.__init__(self, path, _Handler)
        SimpleXMLRPCDispatcher.__init__(self, allow_none=False, encoding=None)
        self.logRequests = False


PROGRAMS = {"web": {"name": "web", "statename": "RUNNING", "pid": 4242},
            "db": {"name": "db", "statename": "STOPPED", "pid": 0},
            "api": {"name": "api", "statename": "STARTING", "pid": 4343}}  # fmt: skip


def _info(name: str) -> dict[str, Any]:
    if name not in PROGRAMS:
        raise ValueError("BAD_NAME")  # supervisord answers a fault
    return PROGRAMS[name]


@pytest.fixture
def sock(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "supervisor.sock"
    server = _Supervisord(str(path))
    server.register_function(_info, "supervisor.getProcessInfo")
    # a short poll: shutdown() waits for the next one (0.5 s by default, at every teardown)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield path
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_a_running_program_has_its_pid_and_a_stopped_or_unknown_one_none(sock: Path) -> None:
    assert program_pid(sock, "web") == 4242
    assert program_pid(sock, "db") is None  # supervisord says pid 0 for what does not run
    assert program_pid(sock, "nope") is None


def test_a_program_still_starting_has_its_pid_but_is_not_started(sock: Path) -> None:
    """Killed within its ``startsecs``, supervisord would start it again: not yet killable."""
    assert program_pid(sock, "api") == 4343
    assert program_pid(sock, "api", started=True) is None
    assert program_pid(sock, "web", started=True) == 4242


def test_a_socket_seen_through_a_long_linked_path_is_reached(sock: Path, tmp_path: Path) -> None:
    deep = tmp_path.joinpath(*["a-folder-with-a-long-name"] * 5)
    deep.mkdir(parents=True)
    (deep / "host").symlink_to(sock.parent)
    linked = deep / "host" / sock.name
    assert len(str(linked)) > 108  # too long for a socket's path as it stands
    assert program_pid(linked, "web") == 4242


def test_no_supervisord_is_none(tmp_path: Path) -> None:
    assert program_pid(tmp_path / "gone.sock", "web") is None


def test_a_supervisord_that_never_answers_is_none_after_the_timeout(tmp_path: Path) -> None:
    path = tmp_path / "mute.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as mute:
        mute.bind(str(path))
        mute.listen(1)  # accepts the connection (backlog) and never reads or answers
        assert program_pid(path, "web", timeout=0.3) is None
