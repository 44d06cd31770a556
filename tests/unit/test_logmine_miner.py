"""The miner: grouping, plain words vs variables, merging with aliases, stable ids, state."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lazarus.logmine import TemplateMiner, state
from lazarus.logmine import miner as miner_module


def test_lines_of_one_template_share_an_id_and_its_text() -> None:
    miner = TemplateMiner()
    a = miner.add("Received block blk_1 of size 10 from /10.0.0.1")
    b = miner.add("Received block blk_2 of size 99 from /10.0.0.2")
    other = miner.add("Deleting block blk_1 file /data/blk_1")
    assert a.is_new and not b.is_new and other.is_new
    assert a.template_id == b.template_id != other.template_id
    assert b.template == "Received block <*> of size <*> from <*>"


def test_plain_words_that_differ_are_different_templates() -> None:
    miner = TemplateMiner()
    ids = {miner.add(f"Changing {w} acls to: yarn,curi").template_id for w in ("view", "modify")}
    assert len(ids) == 2


def test_a_position_with_many_plain_words_becomes_a_variable() -> None:
    miner = TemplateMiner()
    first = [miner.add(f"session closed for user {u}") for u in ("cyrus", "news", "test")]
    assert len({m.template_id for m in first}) == 3
    fourth = miner.add("session closed for user root")
    assert fourth.template == "session closed for user <*>"
    assert {miner.resolve(m.template_id) for m in first} == {fourth.template_id}
    # the word before the variable is learned: two siblings now suffice elsewhere
    opened = [miner.add(f"session opened for user {u} by (uid=0)") for u in ("cyrus", "news")]
    assert miner.resolve(opened[0].template_id) == opened[1].template_id


def test_differing_text_inside_a_variable_merges() -> None:
    miner = TemplateMiner()
    a = miner.add("authentication failure; uid=0 ruser= rhost=10.1.2.3 user=root")
    b = miner.add("authentication failure; uid=0 ruser= rhost=zummit.com user=root")
    c = miner.add("authentication failure; uid=0 ruser= rhost=zummit.com user=guest")
    assert miner.resolve(a.template_id) == miner.resolve(b.template_id) != c.template_id
    assert miner.template(a.template_id).endswith("rhost=<*> user=root")


def test_a_partly_variable_token_the_template_lacks_still_joins() -> None:
    miner = TemplateMiner()
    a = miner.add("10.1.2.3:80 error : Could not resolve proxy.example.org")
    b = miner.add("wpad:80 error : Could not resolve proxy.example.org")
    assert b.template_id == a.template_id and not b.is_new


def test_a_template_whose_variable_was_masked_away_still_joins() -> None:
    miner = TemplateMiner()
    for job in ("alpha.one", "beta.two", "gamma.three", "delta.four"):
        miner.add(f"com.apple.{job}: scheduler told me to run this job")
    odd = miner.add("x-coredata://DB05/p11: scheduler told me to run this job")
    assert len(miner.clusters) == 1
    assert not odd.is_new


def test_forgotten_keys_rejoin_their_templates(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(miner_module, "MAX_KEYS", 4)
    miner = TemplateMiner()
    users = ["ann", "bob", "cid", "dan", "eve", "fay", "gus", "hal"]
    first = [miner.add(f"session closed for user {u}").template_id for u in users]
    again = [miner.add(f"session closed for user {u}").template_id for u in users]
    assert len(miner._by_key) <= 4
    assert {miner.resolve(t) for t in first + again} == {again[0]}


def test_ids_are_stable_for_the_same_stream() -> None:
    lines = [f"worker {i} started task t{i} on host-{i % 3}" for i in range(20)]
    lines += ["disk full on /dev/sda1", "worker 3 stopped"]
    one, two = TemplateMiner(), TemplateMiner()
    assert [one.add(x).template_id for x in lines] == [two.add(x).template_id for x in lines]


def test_state_round_trips_and_continues(tmp_path: Path) -> None:
    miner = TemplateMiner()
    for u in ("cyrus", "news", "test", "root"):
        miner.add(f"session closed for user {u}", at=100.0)
    before = miner.add("disk full on /dev/sda1", at=101.0)
    path = tmp_path / "state" / "miner.json"
    state.save(miner, path)
    again = state.load(TemplateMiner, path)
    assert again.add("disk full on /dev/sdb2").template_id == before.template_id
    assert again.add("session closed for user mail").template == "session closed for user <*>"
    assert again.clusters[before.template_id].first_seen == 101.0
    assert sorted(p.name for p in path.parent.iterdir()) == ["miner.json"]


def test_merged_ids_resolve_after_reload(tmp_path: Path) -> None:
    miner = TemplateMiner()
    old = [miner.add(f"session closed for user {u}").template_id for u in ("a", "b", "c", "d")]
    state.save(miner, tmp_path / "m.json")
    again = state.load(TemplateMiner, tmp_path / "m.json")
    assert len({again.resolve(t) for t in old}) == 1
    assert again.template(old[0]) == "session closed for user <*>"


def test_damaged_state_starts_afresh(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "m.json"
    path.write_text('{"clusters": [{"id": 1}]', encoding="utf-8")
    miner = state.load(TemplateMiner, path)
    assert miner.clusters == {}
    assert "unreadable" in caplog.text
    assert miner.add("still works 1").is_new


def test_state_is_plain_json(tmp_path: Path) -> None:
    miner = TemplateMiner()
    miner.add("bad \udcff byte 7 \x1b[1m")
    state.save(miner, tmp_path / "m.json")
    data = json.loads((tmp_path / "m.json").read_text(encoding="utf-8"))
    assert data["version"] == 1 and len(data["clusters"]) == 1


@settings(max_examples=150, deadline=None)
@given(st.lists(st.text(max_size=120), max_size=40))
def test_any_stream_is_assigned_consistently(messages: list[str]) -> None:
    miner = TemplateMiner()
    matches = [miner.add(m) for m in messages]
    for m in matches:
        live = miner.resolve(m.template_id)
        assert live in miner.clusters
    assert sum(c.count for c in miner.clusters.values()) == len(messages)
    again = TemplateMiner.from_dict(json.loads(json.dumps(miner.to_dict())))
    assert again.clusters.keys() == miner.clusters.keys()


def _loghub() -> Path:
    root = os.environ.get("LAZARUS_DATA") or Path(__file__).resolve().parents[3] / "shared/data"
    return Path(root) / "loghub"


@pytest.mark.skipif(not (_loghub() / "log_formats.json").exists(), reason="no Loghub data")
def test_loghub_grouping_accuracy_stays_high() -> None:
    """A regression guard on the real benchmark (bench/loghub.py prints the figures)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "bench_loghub", Path(__file__).resolve().parents[2] / "bench" / "loghub.py"
    )
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    formats = json.loads((_loghub() / "log_formats.json").read_text(encoding="utf-8"))
    scores = {}
    for name, fmt in formats.items():
        messages, truth = bench.load(_loghub(), name, fmt)
        scores[name] = bench.grouping_accuracy(bench.lazarus_groups(messages), truth)
    assert sum(scores.values()) / len(scores) >= 0.98, scores
    assert min(scores.values()) >= 0.9, scores


def test_several_plain_word_variables_in_one_template_merge() -> None:
    miner = TemplateMiner()
    names = ["ann", "bob", "cid", "dan", "eve", "fay"]
    jobs = ["tidy", "sort", "pack", "ship", "bill", "file"]
    for name, job in zip(names, jobs, strict=True):
        miner.add(f"worker {name} finished job {job} on queue main")
    assert [c.text for c in miner.clusters.values()] == [
        "worker <*> finished job <*> on queue main"
    ]


def test_two_differing_plain_words_alone_stay_apart() -> None:
    miner = TemplateMiner()
    miner.add("mapred job id is deprecated, use mapreduce job id")
    miner.add("mapred task id is deprecated, use mapreduce task id")
    assert len(miner.clusters) == 2


def test_a_key_lacking_a_pure_variable_position_joins_later_or_earlier() -> None:
    early, late = TemplateMiner(), TemplateMiner()
    odd = "worker ann finished job ms on queue main"  # `ms` masks away: one token fewer
    pairs = [("bob", "tidy"), ("cid", "sort"), ("dan", "pack"), ("eve", "ship")]
    lines = [f"worker {n} finished job {j} on queue main" for n, j in pairs]
    for line in [odd, *lines]:
        early.add(line)
    for line in [*lines, odd]:
        late.add(line)
    assert len(early.clusters) == len(late.clusters) == 1
