"""Split the fleet across N watch shards: rendezvous hashing with a balance step.

Each host ranks the shards by a stable hash of (host, shard) and goes to the best-ranked shard
that still has room; room is ``ceil(n/N)`` for the first ``n mod N`` shards to fill up and
``floor(n/N)`` after that, so every shard holds within one host of every other (3 hosts over
2 shards: 2 and 1, never 3 and 0). Pairs are taken best score first over the whole fleet, so
the split does not depend on the order of the inventory. Adding a shard moves only the hosts
that rank it first plus the few the balance step shifts: about 1/N of the fleet. Hashes are
stable across processes (blake2b, not ``hash()``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from lazarus.config import Config
from lazarus.errors import ConfigError


def _score(key: str, shard: int) -> int:
    digest = hashlib.blake2b(f"{key}\0shard-{shard}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def owners(keys: Iterable[str], shards: int) -> dict[str, int]:
    """The shard number (0..shards-1) of each key, balanced to within one key per shard."""
    if shards < 1:
        raise ConfigError("sharding needs at least one shard")
    names = sorted(set(keys))
    if shards == 1:
        return dict.fromkeys(names, 0)
    base, extra = divmod(len(names), shards)
    pairs = sorted(((_score(k, s), k, s) for k in names for s in range(shards)), reverse=True)
    load = [0] * shards
    full_at_ceiling = 0  # shards that took base + 1; only ``extra`` of them may
    owner: dict[str, int] = {}
    for _, key, shard in pairs:
        if key in owner:
            continue
        room = base + 1 if full_at_ceiling < extra else base
        if load[shard] >= room:
            continue
        owner[key] = shard
        load[shard] += 1
        full_at_ceiling += load[shard] == base + 1
    return owner


def mine(keys: Iterable[str], shard: int, shards: int) -> list[str]:
    """The keys owned by shard number ``shard`` of ``shards`` (all keys when ``shards`` <= 1)."""
    keys = list(keys)
    if shards <= 1:
        return keys
    if not 0 <= shard < shards:
        raise ConfigError(f"shard {shard} is outside 0..{shards - 1}")
    owner = owners(keys, shards)
    return [k for k in keys if owner[k] == shard]


def shard_config(config: Config, shard: int, shards: int) -> Config:
    """The config narrowed to the hosts this shard owns, so N watch runs split the fleet."""
    if shards <= 1:
        return config
    keep = set(mine([h.name for h in config.inventory.hosts], shard, shards))
    hosts = [h for h in config.inventory.hosts if h.name in keep]
    return config.model_copy(
        update={"inventory": config.inventory.model_copy(update={"hosts": hosts})}
    )
