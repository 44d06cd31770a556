"""Commands over SSH with paramiko: the only module that imports it.

One connection per (address, port) is kept open and reused, since a handshake costs far more
than an exec. The TCP socket is opened here with TCP_NODELAY (DESIGN measured an exec drop from
~45 ms to ~3 ms). Host keys are always verified; paramiko's errors are translated into the
lazarus.errors tree at this boundary, so callers retry by type, never by message text.
"""

from __future__ import annotations

import errno
import io
import logging
import select
import shlex
import socket
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import paramiko
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from lazarus.config import Host, SshSettings
from lazarus.errors import (
    AuthFailed,
    CommandTimeout,
    ConfigError,
    ConnectionRefused,
    ConnectTimeout,
    HostKeyMismatch,
    HostUnreachable,
    PermanentError,
    RemoteError,
    SecretError,
    TransientError,
)
from lazarus.model import CommandResult
from lazarus.secrets import is_reference, resolve

log = logging.getLogger(__name__)

_KEY_TYPES = (  # what cryptography loads -> paramiko's class for it, as PKey.from_path picks
    (ed25519.Ed25519PrivateKey, paramiko.Ed25519Key),
    (ec.EllipticCurvePrivateKey, paramiko.ECDSAKey),
    (rsa.RSAPrivateKey, paramiko.RSAKey),
)
_CHUNK = 32768
# paramiko's thread per connection wakes every 0.1 s (its socket timeout) to see whether it
# was closed: with 1,000 warm connections that is 10,000 wake-ups a second, a core's worth of
# GIL churn. Once connected, it checks every IDLE_POLL_S instead; data wakes it at once.
IDLE_POLL_S = 5.0


class _RejectUnknown(paramiko.MissingHostKeyPolicy):
    """Refuse a host whose key is not pinned, saying how to fix it."""

    def __init__(self, host: str, known_hosts: Path | None):
        self.host, self.known_hosts = host, known_hosts

    def missing_host_key(self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey):
        where = self.known_hosts or "known_hosts (none configured)"
        raise HostKeyMismatch(
            self.host,
            f"host key of {hostname} ({key.get_name()} {key.fingerprint}) is not in {where}:"
            " check the host, then add its key to known_hosts",
        )


class _TrustOnFirstUse(paramiko.MissingHostKeyPolicy):
    """Accept a host seen for the first time and pin its key in the known_hosts file.

    A key that differs from a pinned one never reaches a policy (paramiko raises
    BadHostKeyException first), so a changed key stays a HostKeyMismatch.
    """

    _file_lock = threading.Lock()

    def __init__(self, host: str, known_hosts: Path):
        self.host, self.known_hosts = host, known_hosts

    def missing_host_key(self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey):
        client.get_host_keys().add(hostname, key.get_name(), key)
        with self._file_lock, self.known_hosts.open("a") as f:
            f.write(f"{hostname} {key.get_name()} {key.get_base64()}\n")
        log.warning(
            "%s: pinned new host key %s %s in %s",
            self.host,
            key.get_name(),
            key.fingerprint,
            self.known_hosts,
        )


class _PinnedKeys:
    """known_hosts, parsed once and again only when the file changes.

    paramiko parses a whole known_hosts per connect (about 0.5 ms a line), so 1,000 hosts
    dialled once each cost minutes of CPU; each connect now gets its own host's lines only.
    """

    def __init__(self, path: Path | None):
        self.path = path
        self._stamp: tuple[int, int] | None = None
        self._keys = paramiko.HostKeys()
        self._lock = threading.Lock()

    def of(self, name: str) -> dict[str, paramiko.PKey]:
        """The pinned keys of ``name`` (``addr`` or ``[addr]:port``), by key type."""
        with self._lock:
            try:
                stat = self.path.stat() if self.path is not None else None
            except FileNotFoundError:
                stat = None
            stamp = (stat.st_mtime_ns, stat.st_size) if stat else None
            if stamp != self._stamp:
                self._keys = paramiko.HostKeys(str(self.path)) if stamp else paramiko.HostKeys()
                self._stamp = stamp
            found = self._keys.lookup(name)
            return dict(found) if found else {}


class _Capped:
    """Collects one output stream up to ``limit`` bytes, then only counts what it drops."""

    def __init__(self, limit: int):
        self.limit, self.buf, self.truncated = limit, bytearray(), False

    def feed(self, data: bytes) -> None:
        room = self.limit - len(self.buf)
        if len(data) > room:
            self.truncated = True
        self.buf += data[: max(room, 0)]

    def text(self) -> str:
        return self.buf.decode("utf-8", errors="replace")


class SshExecutor:
    """Runs argv lists on hosts over SSH, reusing one connection per (address, port).

    Thread-safe: a lock per host guards its connection; channels on one connection run in
    parallel. Use as a context manager, or call ``close()``.
    """

    def __init__(self, settings: SshSettings, base_dir: Path):
        self.settings = settings
        self.base_dir = Path(base_dir)
        self.known_hosts = self._path(settings.known_hosts) if settings.known_hosts else None
        self._pinned = _PinnedKeys(self.known_hosts)
        self._pkey: paramiko.PKey | None = None
        self._clients: dict[tuple[str, int], paramiko.SSHClient] = {}
        self._locks: dict[tuple[str, int], threading.Lock] = {}
        self._guard = threading.Lock()

    def __enter__(self) -> SshExecutor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def run(
        self, host: Host, argv: Sequence[str], *, timeout: float | None = None
    ) -> CommandResult:
        """Run ``argv`` (every argument quoted) on ``host``; a non-zero exit is returned."""
        command = shlex.join(argv)
        timeout = self.settings.command_timeout if timeout is None else timeout
        started = time.monotonic()
        channel = self._open_channel(host)
        try:
            channel.exec_command(command)
            out, err, code = self._collect(host, channel, started + timeout, timeout)
        except (paramiko.SSHException, EOFError, OSError) as exc:
            raise TransientError(host.name, f"connection lost while running: {exc}") from exc
        finally:
            channel.close()
        return CommandResult(
            host=host.name,
            command=command,
            exit_code=code,
            stdout=out.text(),
            stderr=err.text(),
            duration_s=time.monotonic() - started,
            truncated=out.truncated or err.truncated,
        )

    def close(self) -> None:
        """Close every cached connection."""
        with self._guard:
            clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            client.close()

    # --- connections ------------------------------------------------------------------------

    def _open_channel(self, host: Host) -> paramiko.Channel:
        """A session on the cached connection; a dead one is dropped and re-opened once, a hung
        one (open but silent) is dropped and fails, to be dialled afresh next time."""
        target = (host.address, host.port or self.settings.port)
        with self._lock_for(target):
            client = self._clients.get(target)
            if client is not None:
                try:
                    return self._session(client)
                except paramiko.ChannelException as exc:  # alive, but e.g. MaxSessions reached
                    raise TransientError(host.name, f"sshd refused a session: {exc}") from exc
                except (paramiko.SSHException, EOFError, OSError) as exc:
                    self._clients.pop(target, None)
                    transport = client.get_transport()
                    hung = transport is not None and transport.is_active()
                    client.close()
                    if hung:  # open, yet no answer: a redial would only wait a second time
                        raise ConnectTimeout(
                            host.name, f"its open connection did not answer: {exc}"
                        ) from exc
                    log.info("%s: cached connection is dead, reconnecting", host.name)
            client = self._connect(host, *target)
            self._clients[target] = client
            try:
                return self._session(client)
            except (paramiko.SSHException, EOFError, OSError) as exc:
                self._clients.pop(target, None)
                client.close()
                raise ConnectTimeout(host.name, f"cannot open a session: {exc}") from exc

    def _session(self, client: paramiko.SSHClient) -> paramiko.Channel:
        transport = client.get_transport()
        if transport is None or not transport.is_active():
            raise paramiko.SSHException("transport closed")
        return transport.open_session(timeout=self.settings.connect_timeout)

    def _lock_for(self, target: tuple[str, int]) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(target, threading.Lock())

    def _connect(self, host: Host, address: str, port: int) -> paramiko.SSHClient:
        timeout = self.settings.connect_timeout
        sock = _tcp_connect(host.name, address, port, timeout)
        client = paramiko.SSHClient()
        try:
            name = address if port == 22 else f"[{address}]:{port}"  # as paramiko looks it up
            for key_type, key in self._pinned.of(name).items():
                client.get_host_keys().add(name, key_type, key)
            client.set_missing_host_key_policy(self._policy(host))
            client.connect(
                address,
                port=port,
                username=self.settings.user,
                pkey=self._key(host.name),
                sock=sock,
                timeout=timeout,
                banner_timeout=timeout,
                auth_timeout=timeout,
                channel_timeout=timeout,
                allow_agent=False,
                look_for_keys=False,
            )
        except Exception as exc:
            client.close()
            sock.close()
            translated = _translate(host.name, address, port, exc, self.known_hosts)
            if translated is exc:
                raise
            raise translated from exc
        sock.settimeout(IDLE_POLL_S)
        return client

    def _policy(self, host: Host) -> paramiko.MissingHostKeyPolicy:
        if self.settings.host_key_policy == "trust_on_first_use" and self.known_hosts:
            return _TrustOnFirstUse(host.name, self.known_hosts)
        return _RejectUnknown(host.name, self.known_hosts)

    def _key(self, host_name: str) -> paramiko.PKey:
        """The client key; one that cannot be loaded is AuthFailed for the host we were about
        to reach: no retry will make it work."""
        if self._pkey is None:
            try:
                self._pkey = load_client_key(self.settings, self.base_dir)
            except (ConfigError, SecretError) as exc:
                raise AuthFailed(host_name, str(exc)) from None
        return self._pkey

    def _path(self, value: str) -> Path:
        p = Path(value).expanduser()
        return p if p.is_absolute() else self.base_dir / p

    # --- output -----------------------------------------------------------------------------

    def _collect(
        self, host: Host, channel: paramiko.Channel, deadline: float, timeout: float
    ) -> tuple[_Capped, _Capped, int]:
        """Read both streams until exit status and EOF, or raise CommandTimeout at deadline."""
        out, err = _Capped(self.settings.output_limit), _Capped(self.settings.output_limit)
        ready = select.poll()  # not select(): a warm fleet's descriptors pass 1024
        ready.register(channel.fileno(), select.POLLIN)
        while True:
            while channel.recv_ready():
                out.feed(channel.recv(_CHUNK))
            while channel.recv_stderr_ready():
                err.feed(channel.recv_stderr(_CHUNK))
            done = channel.eof_received or channel.closed
            if done and channel.exit_status_ready():
                return out, err, channel.exit_status
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                _kill(channel)
                raise CommandTimeout(host.name, f"command did not finish within {timeout:g}s")
            if done:  # EOF seen; the exit status is on its way
                channel.status_event.wait(min(remaining, 0.05))
            else:
                ready.poll(min(remaining, 0.5) * 1000)


def _kill(channel: paramiko.Channel) -> None:
    """Ask sshd to SIGKILL the command's process group (RFC 4254 "signal" request).

    Closing the channel alone leaves the command running on the host. paramiko has no public
    call for this request, so it is built here the way Channel's own requests are. OpenSSH
    (>= 7.9) answers it with killpg() for a non-root login; it refuses it for root ("session
    signalling requires privilege separation"), where the command runs on until it ends.
    """
    m = paramiko.Message()
    m.add_byte(paramiko.common.cMSG_CHANNEL_REQUEST)
    m.add_int(channel.remote_chanid)
    m.add_string("signal")
    m.add_boolean(False)
    m.add_string("KILL")
    try:
        channel.transport._send_user_message(m)
    except (paramiko.SSHException, EOFError, OSError):
        log.debug("could not send the kill signal; closing the channel only")


def _tcp_connect(name: str, address: str, port: int, timeout: float) -> socket.socket:
    """A connected TCP socket with TCP_NODELAY, its OS errors mapped to the tree."""
    try:
        sock = socket.create_connection((address, port), timeout=timeout)
    except TimeoutError as exc:
        raise ConnectTimeout(name, f"no answer from {address}:{port} in {timeout:g}s") from exc
    except ConnectionRefusedError as exc:
        raise ConnectionRefused(name, f"nothing listens on {address}:{port}") from exc
    except OSError as exc:
        if exc.errno in (errno.EHOSTUNREACH, errno.ENETUNREACH):
            raise HostUnreachable(name, f"no route to {address}:{port}") from exc
        raise HostUnreachable(name, f"cannot reach {address}:{port}: {exc}") from exc
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def _translate(
    name: str, address: str, port: int, exc: Exception, known_hosts: Path | None
) -> Exception:
    """paramiko's connect-time errors as the lazarus error tree (others come back as they are)."""
    if isinstance(exc, RemoteError):
        return exc
    if isinstance(exc, paramiko.BadHostKeyException):
        return HostKeyMismatch(
            name,
            f"host key of {address}:{port} changed ({exc.key.get_name()} {exc.key.fingerprint},"
            f" pinned {exc.expected_key.fingerprint}): possible impersonation - check the host,"
            f" then update {known_hosts or 'known_hosts'}",
        )
    if isinstance(exc, paramiko.AuthenticationException):
        return AuthFailed(name, f"{address}:{port} refused our key ({exc})")
    if isinstance(exc, TimeoutError):
        return ConnectTimeout(name, f"SSH handshake with {address}:{port} timed out")
    if isinstance(exc, EOFError | OSError):  # reset or closed mid-handshake, e.g. MaxStartups
        return ConnectTimeout(name, f"SSH handshake with {address}:{port} was cut off: {exc}")
    if isinstance(exc, paramiko.SSHException):
        text = str(exc)
        # "No existing session": the handshake died under the auth call (a hung sshd's banner
        # timed out in paramiko's thread), so it is as transient as the timeout itself
        if any(t in text.lower() for t in ("timeout", "banner", "no existing session")) or not text:
            return ConnectTimeout(name, f"SSH handshake with {address}:{port} failed: {text}")
        return PermanentError(name, f"SSH negotiation with {address}:{port} failed: {text}")
    return exc


def load_client_key(settings: SshSettings, base_dir: Path) -> paramiko.PKey:
    """The client key from a file path (relative to base_dir) or a secret holding its text,
    decrypted with ``settings.passphrase`` when it names one.

    Raises ConfigError naming the field to fix (``inventory.ssh.key`` or ``.passphrase``):
    ``lazarus check`` shows it with the line; a run turns it into AuthFailed for its host.
    """
    password = resolve(settings.passphrase).reveal() if settings.passphrase else None
    if is_reference(settings.key):
        where, data = f"secret {settings.key!r}", resolve(settings.key).reveal().encode()
    else:
        path = Path(settings.key).expanduser()
        path = path if path.is_absolute() else base_dir / path
        where = str(path)
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise ConfigError(
                f"cannot read the SSH key {path} ({exc.strerror})", field="inventory.ssh.key"
            ) from None
    return _parse_key(data, password, where, settings.passphrase)


def _parse_key(data: bytes, password: str | None, where: str, ref: str | None) -> paramiko.PKey:
    """A private key in OpenSSH or PEM form (ed25519, ecdsa, rsa), as paramiko's own loader
    reads it, with cryptography's and paramiko's errors said in the operator's words."""
    secret = password.encode() if password is not None else None
    loaded, last = None, None
    for load in (serialization.load_ssh_private_key, serialization.load_pem_private_key):
        try:
            loaded = load(data, password=secret)
            break
        except TypeError as exc:  # encrypted without a passphrase, or the other way round
            if secret is None:
                raise ConfigError(
                    f"the SSH key in {where} is encrypted: set inventory.ssh.passphrase to a"
                    " secret reference (env:NAME, secret:NAME) holding its passphrase",
                    field="inventory.ssh.key",
                ) from None
            if "not encrypted" in str(exc):
                return _parse_key(data, None, where, None)
            last = exc
        except (ValueError, UnsupportedAlgorithm) as exc:
            last = exc
    if loaded is None and secret is not None:  # a wrong one reads as junk, whatever the form
        raise ConfigError(
            f"the passphrase in {ref} does not decrypt the SSH key in {where}",
            field="inventory.ssh.passphrase",
        )
    if loaded is None:
        raise ConfigError(
            f"{where} holds no ed25519/ecdsa/rsa private key ({last})", field="inventory.ssh.key"
        )
    key_type = next((t for kind, t in _KEY_TYPES if isinstance(loaded, kind)), None)
    if key_type is None:
        raise ConfigError(f"{where}: not an ed25519/ecdsa/rsa key", field="inventory.ssh.key")
    try:
        return key_type.from_private_key(io.StringIO(data.decode()), password=password)
    except (paramiko.SSHException, ValueError) as exc:
        raise ConfigError(f"{where}: {exc}", field="inventory.ssh.key") from None
