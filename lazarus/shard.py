"""Consistent hash ring with virtual nodes: split the fleet across N watch shards.

Adding or removing a shard moves only about 1/N of the targets, so a scale-out does not
reshuffle every incident's owner. Hashes are stable across processes (blake2b, not ``hash()``).
"""

from __future__ import annotations

import bisect
import hashlib
from collections.abc import Iterable

from lazarus.config import Config
from lazarus.errors import ConfigError


def _point(key: str) -> int:
    return int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "big")


class Ring:
    """Map keys (target names) to shard names; ``vnodes`` points per shard smooth the split."""

    def __init__(self, shards: Iterable[str], vnodes: int = 128) -> None:
        names = sorted(set(shards))
        if not names or vnodes < 1:
            raise ConfigError("a hash ring needs at least one shard and one virtual node")
        pairs = sorted((_point(f"{name}#{i}"), name) for name in names for i in range(vnodes))
        self._points = [p for p, _ in pairs]
        self._owners = [n for _, n in pairs]
        self.shards = tuple(names)

    def owner(self, key: str) -> str:
        """The shard that owns ``key``: the first virtual node clockwise from its hash."""
        i = bisect.bisect_right(self._points, _point(key)) % len(self._points)
        return self._owners[i]


def shard_names(count: int) -> list[str]:
    return [f"shard-{i}" for i in range(count)]


def mine(keys: Iterable[str], shard: int, shards: int) -> list[str]:
    """The keys owned by shard number ``shard`` of ``shards`` (all keys when ``shards`` <= 1)."""
    if shards <= 1:
        return list(keys)
    if not 0 <= shard < shards:
        raise ConfigError(f"shard {shard} is outside 0..{shards - 1}")
    ring = Ring(shard_names(shards))
    me = f"shard-{shard}"
    return [k for k in keys if ring.owner(k) == me]


def shard_config(config: Config, shard: int, shards: int) -> Config:
    """The config narrowed to the hosts this shard owns, so N watch runs split the fleet."""
    if shards <= 1:
        return config
    keep = set(mine([h.name for h in config.inventory.hosts], shard, shards))
    hosts = [h for h in config.inventory.hosts if h.name in keep]
    return config.model_copy(
        update={"inventory": config.inventory.model_copy(update={"hosts": hosts})}
    )
