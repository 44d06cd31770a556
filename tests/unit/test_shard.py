from __future__ import annotations

import random

import pytest

from lazarus.errors import ConfigError
from lazarus.shard import mine, owners

HOSTS = [f"host-{i:05d}" for i in range(5_000)]


def _moved(before: dict[str, int], after: dict[str, int]) -> float:
    return sum(before[h] != after[h] for h in HOSTS) / len(HOSTS)


@pytest.mark.parametrize("n", [2, 4, 8])
def test_adding_a_shard_moves_about_one_in_n_plus_one(n: int) -> None:
    moved = _moved(owners(HOSTS, n), owners(HOSTS, n + 1))
    ideal = 1 / (n + 1)
    print(f"{n}->{n + 1} shards: moved {moved:.3f}, ideal {ideal:.3f}")
    assert abs(moved - ideal) < 0.15 * ideal


@pytest.mark.parametrize("n", [3, 5])
def test_removing_a_shard_moves_about_its_share(n: int) -> None:
    before, after = owners(HOSTS, n), owners(HOSTS, n - 1)
    gone = [h for h in HOSTS if before[h] == n - 1]
    assert all(after[h] != n - 1 for h in gone)
    assert abs(_moved(before, after) - 1 / n) < 0.15 / n


@pytest.mark.parametrize("shards", [2, 3, 4, 5, 7])
def test_every_fleet_splits_within_one_host_per_shard(shards: int) -> None:
    for size in range(0, 40):
        names = [f"web-{i}" for i in range(1, size + 1)]
        parts = [mine(names, s, shards) for s in range(shards)]
        assert sorted(h for p in parts for h in p) == sorted(names)
        sizes = [len(p) for p in parts]
        assert max(sizes) - min(sizes) <= 1, (size, sizes)


def test_three_hosts_over_two_shards_leave_no_shard_empty() -> None:
    hosts = ["web-1", "web-2", "web-3"]
    assert sorted(len(mine(hosts, s, 2)) for s in range(2)) == [1, 2]


def test_the_split_ignores_inventory_order_and_bad_input_is_rejected() -> None:
    shuffled = random.Random(7).sample(HOSTS, len(HOSTS))
    assert owners(shuffled, 4) == owners(HOSTS, 4)
    assert mine(["x", "y"], 0, 1) == ["x", "y"]
    with pytest.raises(ConfigError):
        mine(HOSTS, 3, 3)
    with pytest.raises(ConfigError):
        owners(HOSTS, 0)
