"""The public face of lazarus.logmine is exactly its ``__all__``."""

from __future__ import annotations

import lazarus.logmine as logmine


def test_all_names_exist_and_nothing_public_is_missing() -> None:
    public = {n for n in dir(logmine) if not n.startswith("_")}
    # submodules come along with importing from them; `annotations` is the __future__ import
    incidental = {"compare", "formats", "masking", "miner", "signals", "annotations"}
    assert set(logmine.__all__) == public - incidental
    assert all(getattr(logmine, n) is not None for n in logmine.__all__)
