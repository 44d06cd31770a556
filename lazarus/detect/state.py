"""Detector state to bytes and back, for the store between watch runs.

The state is plain objects holding numpy arrays (a ``Cohort``: an ``Ensemble`` and its extras):
pickled (arrays as raw buffers) and zlib-compressed. Loading accepts only numpy and
``lazarus.detect`` classes, so a tampered state file cannot name any other callable.
"""

from __future__ import annotations

import io
import pickle
import zlib
from typing import Any


class _Restricted(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if module == "numpy" or module.startswith(("numpy.", "lazarus.detect.")):
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"detector state may not hold {module}.{name}")


def dumps(state: object) -> bytes:
    """Compact bytes of a detector's state."""
    return zlib.compress(pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL), 1)


def loads(blob: bytes) -> Any:
    """The state ``dumps`` wrote; raises on anything else (corrupt, or a foreign class)."""
    return _Restricted(io.BytesIO(zlib.decompress(blob))).load()
