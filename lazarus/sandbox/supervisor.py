"""supervisord's own XML-RPC interface on its unix socket, for what the sandbox asks it often.

``supervisorctl pid`` is a Python start (~0.2 s on an idle machine, far more on a busy one) for a
one-line answer; every test's clean-up asks it for each host. The same question over the socket
supervisorctl itself uses takes milliseconds. Lazarus never uses this: it drives supervisorctl
over SSH, as it would on a real host.
"""

from __future__ import annotations

import http.client
import socket
import xmlrpc.client
from pathlib import Path


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float):
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self._path)
        except OSError:
            sock.close()
            raise
        self.sock = sock


class _UnixTransport(xmlrpc.client.Transport):
    def __init__(self, path: str, timeout: float):
        super().__init__()
        self._path, self._timeout = path, timeout

    def make_connection(self, host: object) -> http.client.HTTPConnection:
        return _UnixConnection(self._path, self._timeout)


def program_pid(
    sock: Path, program: str, timeout: float = 10.0, *, started: bool = False
) -> int | None:
    """The PID of supervisord's ``program`` (as ``supervisorctl pid`` prints it); None when it
    does not run, supervisord does not know it, or supervisord does not answer in ``timeout``.
    ``started``: None too while it is still starting (its ``startsecs``): one killed then is a
    failed start, which supervisord starts again, not a process that died.

    ``sock`` is resolved first: seen through a linked folder its path may pass the 108 bytes a
    socket's path may have; the path supervisord bound fits."""
    transport = _UnixTransport(str(sock.resolve()), timeout)
    proxy = xmlrpc.client.ServerProxy("http://localhost", transport=transport)
    try:
        info = proxy.supervisor.getProcessInfo(program)
    except (OSError, http.client.HTTPException, xmlrpc.client.Error):
        return None
    finally:
        transport.close()
    if not isinstance(info, dict) or (started and info.get("statename") != "RUNNING"):
        return None
    pid = info.get("pid", 0)
    return pid if isinstance(pid, int) and pid > 0 else None
