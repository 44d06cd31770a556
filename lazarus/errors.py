"""Every error Lazarus raises, as one tree.

Callers catch the level they care about; retries key off the tree, never off message text::

    LazarusError
    ├── ConfigError(path, line, field)        the YAML is wrong; names file:line and the field
    ├── SecretError(ref)                      a secret reference that cannot be resolved
    ├── RemoteError(host)                     anything that went wrong talking to a host
    │   ├── TransientError                    may pass: retried with backoff
    │   │   ├── ConnectTimeout
    │   │   ├── ConnectionRefused
    │   │   ├── HostUnreachable
    │   │   └── CommandTimeout
    │   └── PermanentError                    will not pass by retrying: escalate at once
    │       ├── AuthFailed
    │       ├── HostKeyMismatch
    │       ├── CommandRejected
    │       └── UnitNotFound
    ├── ActionError(step_id)                  a recovery step failed (wraps the cause)
    ├── VerifyFailed                          the symptom is still there after recovery
    ├── DeliveryError(receiver)               a notification was not accepted
    ├── Throttled                             a safety limit refused to act
    └── ApprovalRejected                      a person (or a timeout) said no
        └── ClearedMeanwhile                  the fault cleared while a person was asked
"""

from __future__ import annotations


class LazarusError(Exception):
    """Root of every error Lazarus raises on purpose."""


class ConfigError(LazarusError):
    """The configuration is invalid; the message names the file, line and field."""

    def __init__(self, message: str, *, path: str = "", line: int | None = None, field: str = ""):
        self.path, self.line, self.field, self.reason = path, line, field, message
        where = f"{path}:{line}" if path and line else path
        parts = [p for p in (where, field) if p]
        super().__init__(": ".join([*parts, message]))


class SecretError(LazarusError):
    """A secret reference could not be resolved (the value itself is never in the message)."""

    def __init__(self, ref: str, reason: str):
        self.ref = ref
        super().__init__(f"secret {ref!r}: {reason}")


class RemoteError(LazarusError):
    """Talking to a host failed; ``host`` names it."""

    def __init__(self, host: str, message: str):
        self.host = host
        super().__init__(f"{host}: {message}")


class TransientError(RemoteError):
    """A failure that may pass on its own: worth a retry."""


class ConnectTimeout(TransientError):
    """The TCP or SSH handshake did not complete in time."""


class ConnectionRefused(TransientError):
    """Nothing listens on the host's SSH port (yet)."""


class HostUnreachable(TransientError):
    """No route to the host: network down or partitioned."""


class CommandTimeout(TransientError):
    """The remote command did not finish within its timeout."""


class PermanentError(RemoteError):
    """A failure that retrying will not fix: escalate to a person."""


class AuthFailed(PermanentError):
    """The host refused our key."""


class HostKeyMismatch(PermanentError):
    """The host's key is unknown or differs from the pinned one: possible impersonation."""


class CommandRejected(PermanentError):
    """The command ran and failed, or it is not allowed to run at all."""


class UnitNotFound(PermanentError):
    """The service manager does not know the named service."""


class ActionError(LazarusError):
    """A recovery step failed; ``step_id`` names it and ``__cause__`` holds why."""

    def __init__(self, step_id: str, message: str):
        self.step_id = step_id
        super().__init__(f"step {step_id!r}: {message}")


class VerifyFailed(LazarusError):
    """Recovery ran but the symptom that opened the incident is still there."""


class DeliveryError(LazarusError):
    """A receiver did not accept a notification."""

    def __init__(self, receiver: str, message: str):
        self.receiver = receiver
        super().__init__(f"receiver {receiver!r}: {message}")


class Throttled(LazarusError):
    """A safety limit (circuit breaker, fleet cap) refused to act."""


class ApprovalRejected(LazarusError):
    """A destructive step was not approved (rejected, or the approval timed out)."""


class ClearedMeanwhile(ApprovalRejected):
    """The symptom cleared while a destructive step waited for approval: nothing to approve,
    and the playbook goes straight to its verify steps."""
