"""Real hosts on one machine, for the demo, the end-to-end tests and the benchmarks.

``Sandbox.up(root)`` starts them, ``sb.fault(host, mode)`` breaks one, ``sb.down()`` ends all.
"""

from __future__ import annotations

from lazarus.sandbox.core import FAULTS, Fault, Sandbox, SandboxError, SandboxHost

__all__ = ["FAULTS", "Fault", "Sandbox", "SandboxError", "SandboxHost"]
