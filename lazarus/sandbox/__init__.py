"""Real hosts on one machine, for the demo, the end-to-end tests and the benchmarks.

``Sandbox.up(root)`` starts them, ``sb.fault(host, mode)`` breaks one, ``sb.down()`` ends all.
"""

from __future__ import annotations

from lazarus.sandbox.core import FAULTS, POWER, Fault, Power, Sandbox, SandboxError, SandboxHost

__all__ = ["FAULTS", "POWER", "Fault", "Power", "Sandbox", "SandboxError", "SandboxHost"]
