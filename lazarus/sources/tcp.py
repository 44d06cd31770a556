"""TCP connect probes: the answer the OS gives names what is wrong (nothing listens, no route,
no answer), so a probe detail can tell a stopped server from a cut link."""

from __future__ import annotations

import errno
import socket


def connect_detail(address: str, port: int, timeout: float) -> str:
    """``""`` when ``address:port`` accepts a connection, else a detail that starts with
    ``refused`` (nothing listens) or ``unreachable`` (no route, or no answer in time)."""
    try:
        with socket.create_connection((address, port), timeout=timeout):
            return ""
    except TimeoutError:
        return f"unreachable: no answer to connect within {timeout:g}s"
    except ConnectionRefusedError:
        return f"refused: nothing listens on {address}:{port}"
    except OSError as exc:
        if exc.errno in (errno.EHOSTUNREACH, errno.ENETUNREACH, errno.EHOSTDOWN):
            return f"unreachable: no route to {address}:{port}"
        return f"unreachable: {address}:{port}: {exc.strerror or exc}"
