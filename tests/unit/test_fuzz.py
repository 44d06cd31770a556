"""Fuzzing the inputs a user hands Lazarus: config and playbook files, CSV series, log lines.
Each must end in a clear error or a correct result: never a traceback, never a run-away."""

from __future__ import annotations

import contextlib
import time
from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lazarus.config import load_config
from lazarus.detect.csvfile import detect_file
from lazarus.errors import ConfigError
from lazarus.logmine import TemplateMiner
from lazarus.playbooks.schema import load_playbook

LIMIT = 10.0  # seconds one input may take, on a loaded 2-core machine
GOOD = yaml.safe_load((Path(__file__).parents[1] / "fixtures/config/good/minimal.yaml").read_text())
FUZZ = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),
    st.text(max_size=30),
    st.sampled_from(["0", "-1", "1e400", ".inf", ".nan", "10%", "0%", "{addr}", "(", "..", "-o"]),
)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=20,
)
FIELDS = [
    "inventory.ssh.connect_timeout",
    "inventory.hosts",
    "inventory.services",
    "watch",
    "watch.interval",
    "notify",
    "notify.receivers",
    "notify.route",
    "playbooks",
    "playbooks.fleet_cap",
    "playbooks.allow_commands",
    "playbooks.out_of_band",
    "detectors",
    "logs",
    "sources",
    "state",
    "bogus",
]


def _timed(call):
    start = time.perf_counter()
    try:
        return call()
    finally:
        assert time.perf_counter() - start < LIMIT


@FUZZ
@given(field=st.sampled_from(FIELDS), value=values)
def test_a_mutated_config_is_valid_or_a_config_error(tmp_path_factory, field, value) -> None:
    data = yaml.safe_load(yaml.safe_dump(GOOD))
    node = data
    *parents, last = field.split(".")
    for key in parents:
        node = node.setdefault(key, {})
    node[last] = value
    path = tmp_path_factory.mktemp("fuzz") / "lazarus.yaml"
    path.write_text(yaml.safe_dump(data))
    try:
        _timed(lambda: load_config(path))
    except ConfigError as exc:
        assert str(path) in str(exc)


@FUZZ
@given(text=st.binary(max_size=2000))
def test_any_bytes_as_a_config_or_playbook_are_valid_or_a_config_error(
    tmp_path_factory, text: bytes
) -> None:
    folder = tmp_path_factory.mktemp("fuzz")
    for path, load in ((folder / "lazarus.yaml", load_config), (folder / "x.yaml", load_playbook)):
        path.write_bytes(text)
        with contextlib.suppress(ConfigError):
            _timed(lambda: load(path))  # noqa: B023 - called at once


step_actions = st.sampled_from(
    [
        "wait",
        "ssh.restart",
        "ssh.run",
        "disk.clean",
        "http.check",
        "host.reboot",
        "release.rollback",
        "notify",
        "nope",
    ]
)


@FUZZ
@given(
    action=step_actions,
    params=st.dictionaries(st.text(max_size=12), values, max_size=3),
    extra=st.dictionaries(
        st.sampled_from(["timeout", "retries", "retry_delay", "when"]), values, max_size=2
    ),
)
def test_a_mutated_playbook_is_valid_or_a_config_error(tmp_path_factory, action, params, extra):
    book = {
        "version": 1,
        "name": "x",
        "trigger": {"matchers": ['symptom="x"']},
        "steps": [{"id": "s", "action": action, "with": params, **extra}],
    }
    path = tmp_path_factory.mktemp("fuzz") / "x.yaml"
    path.write_text(yaml.safe_dump(book))
    with contextlib.suppress(ConfigError):
        _timed(lambda: load_playbook(path))


cells = st.one_of(st.floats(), st.text(max_size=20), st.sampled_from(["1e308", "-1e308", "nan"]))


@FUZZ
@given(rows=st.lists(st.tuples(st.text(max_size=25), cells), max_size=120))
def test_any_csv_series_is_scored_or_a_clear_error(tmp_path_factory, rows) -> None:
    folder = tmp_path_factory.mktemp("fuzz")
    src = folder / "in.csv"
    src.write_text(
        "timestamp,value\n" + "".join(f"{a!s},{b!s}\n".replace("\r", "") for a, b in rows)
    )
    try:
        _timed(lambda: detect_file(src, folder / "out.csv"))
    except ValueError as exc:
        assert str(src) in str(exc)
        return
    lines = (folder / "out.csv").read_text().splitlines()
    assert lines[0].endswith("anomaly_score")
    assert all(0.0 <= float(x.rsplit(",", 1)[1]) <= 1.0 for x in lines[1:])


@FUZZ
@given(lines=st.lists(st.text(max_size=300), max_size=200))
def test_any_log_lines_mine_to_templates_in_bounded_time(lines) -> None:
    miner = TemplateMiner()
    matches = _timed(lambda: [miner.add(line) for line in lines])
    for match in matches:
        assert miner.resolve(match.template_id) in miner.clusters
