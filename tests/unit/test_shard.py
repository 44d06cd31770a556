from __future__ import annotations

import pytest

from lazarus.errors import ConfigError
from lazarus.shard import Ring, mine, shard_names

HOSTS = [f"host-{i:05d}" for i in range(20_000)]


def _moved(before: Ring, after: Ring) -> float:
    return sum(before.owner(h) != after.owner(h) for h in HOSTS) / len(HOSTS)


@pytest.mark.parametrize("n", [2, 4, 8])
def test_adding_a_shard_moves_about_one_in_n_plus_one(n: int) -> None:
    moved = _moved(Ring(shard_names(n)), Ring(shard_names(n + 1)))
    ideal = 1 / (n + 1)
    print(f"{n}->{n + 1} shards: moved {moved:.3f}, ideal {ideal:.3f}")
    assert abs(moved - ideal) < 0.35 * ideal


@pytest.mark.parametrize("n", [3, 5])
def test_removing_a_shard_moves_only_its_hosts(n: int) -> None:
    before, after = Ring(shard_names(n)), Ring(shard_names(n - 1))
    gone = f"shard-{n - 1}"
    changed = [h for h in HOSTS if before.owner(h) != after.owner(h)]
    assert all(before.owner(h) == gone for h in changed)
    assert abs(len(changed) / len(HOSTS) - 1 / n) < 0.35 / n


def test_load_is_balanced_and_every_host_has_exactly_one_owner() -> None:
    shards = 4
    parts = [mine(HOSTS, s, shards) for s in range(shards)]
    assert sorted(h for p in parts for h in p) == sorted(HOSTS)
    for p in parts:
        assert abs(len(p) / len(HOSTS) - 1 / shards) < 0.25 / shards


def test_owner_is_stable_and_bad_input_rejected() -> None:
    assert Ring(["b", "a"]).owner("x") == Ring(["a", "b"]).owner("x")
    assert mine(["x", "y"], 0, 1) == ["x", "y"]
    with pytest.raises(ConfigError):
        mine(HOSTS, 3, 3)
    with pytest.raises(ConfigError):
        Ring([])
