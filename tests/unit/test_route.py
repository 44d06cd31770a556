"""Alertmanager-style routing: matcher syntax and semantics, continue, inheritance, fallback."""

from __future__ import annotations

from pathlib import Path

import pytest

from lazarus.config import Route, load_config
from lazarus.errors import ConfigError
from lazarus.notify.route import Matcher, parse_matchers, receivers_for


def one(text: str) -> Matcher:
    (matcher,) = parse_matchers(text)
    return matcher


def route(data: dict) -> Route:
    return Route.model_validate(data)


# --- matchers -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "name", "op", "value"),
    [
        ('severity="critical"', "severity", "=", "critical"),
        ('severity != "info"', "severity", "!=", "info"),
        ('service=~"api|web"', "service", "=~", "api|web"),
        ('host!~"db-.*"', "host", "!~", "db-.*"),
        ("team=ops", "team", "=", "ops"),
        ('msg="say \\"hi\\", then \\\\ leave"', "msg", "=", 'say "hi", then \\ leave'),
        ('empty=""', "empty", "=", ""),
    ],
)
def test_a_matcher_reads_name_operator_and_value(text: str, name: str, op: str, value: str):
    matcher = one(text)
    assert (matcher.name, matcher.op, matcher.value) == (name, op, value)


def test_several_matchers_share_one_string_in_braces_or_not() -> None:
    expected = [("severity", "=", "critical"), ("team", "=~", "db|ops")]
    for text in ('{severity="critical", team=~"db|ops"}', 'severity="critical",team=~"db|ops",'):
        assert [(m.name, m.op, m.value) for m in parse_matchers(text)] == expected


def test_a_comma_inside_quotes_belongs_to_the_value() -> None:
    assert one('summary="a, b"').value == "a, b"


def test_a_matcher_prints_back_in_alertmanager_syntax() -> None:
    assert str(one('msg=~"a\\"b"')) == 'msg=~"a\\"b"'
    assert parse_matchers(str(one('msg=~"a\\"b"'))) == parse_matchers('msg=~"a\\"b"')


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ("severity", "expected name, operator"),
        ('severity=="critical"', "expected ','"),
        ('1abc="x"', "expected name, operator"),
        ('a="x" b="y"', "expected ','"),
        ('a="unclosed', "expected ','"),
        ("", "is empty"),
        ("{}", "is empty"),
        ('svc=~"(api"', "invalid regex '(api'"),
    ],
)
def test_a_malformed_matcher_is_a_config_error_that_says_why(text: str, complaint: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_matchers(text)
    assert complaint in str(caught.value)
    assert repr(text) in str(caught.value)


@pytest.mark.parametrize(
    ("text", "value", "expected"),
    [
        ('s="critical"', "critical", True),
        ('s="critical"', "Critical", False),
        ('s!="critical"', "warning", True),
        ('s!="critical"', "critical", False),
        ('s=~"crit"', "critical", False),  # anchored: a substring is not a match
        ('s=~"crit.*"', "critical", True),
        ('s=~"warning|critical"', "critical", True),
        ('s=~"a|b"', "xa", False),  # anchoring wraps the whole alternation
        ('s!~"crit.*"', "critical", False),
        ('s!~"crit"', "critical", True),
    ],
)
def test_matcher_semantics(text: str, value: str, expected: bool) -> None:
    assert one(text).matches({"s": value}) is expected


def test_a_missing_label_reads_as_empty_as_in_alertmanager() -> None:
    assert one('team=""').matches({})
    assert one('team!="ops"').matches({})
    assert not one('team="ops"').matches({})
    assert one('team=~"ops|"').matches({})
    assert not one('team!~".*"').matches({})


# --- the routing tree -------------------------------------------------------------------------

TREE = route(
    {
        "receiver": "default",
        "routes": [
            {"matchers": ['severity="critical"'], "receiver": "pager", "continue": True},
            {
                "matchers": ['team="db"'],
                "receiver": "db-team",
                "routes": [
                    {"matchers": ['service=~"postgres.*"'], "receiver": "dba"},
                    {"matchers": ['symptom="disk_full"']},  # inherits db-team
                ],
            },
            {"matchers": ['team=~"db|web"'], "receiver": "shadowed"},
            {"matchers": ['team="web"', 'severity!="info"'], "receiver": "web-team"},
        ],
    }
)


@pytest.mark.parametrize(
    ("labels", "expected"),
    [
        ({"severity": "warning", "team": "ops"}, ["default"]),  # nothing matches: the root
        # a match with continue: true still counts as a match, so the root does not answer
        ({"severity": "critical", "team": "ops"}, ["pager"]),
        ({"severity": "critical", "team": "db", "service": "postgres-1"}, ["pager", "dba"]),
        ({"team": "db", "service": "api"}, ["db-team"]),  # no grandchild matches: the child
        ({"team": "db", "symptom": "disk_full"}, ["db-team"]),  # receiver inherited
        ({"team": "web", "severity": "warning"}, ["shadowed"]),  # first match wins
    ],
)
def test_receivers_for_walks_depth_first(labels: dict[str, str], expected: list[str]) -> None:
    assert receivers_for(TREE, labels) == expected


def test_all_matchers_of_a_route_must_match() -> None:
    tree = route(
        {
            "receiver": "default",
            "routes": [{"matchers": ['team="web"', 'severity!="info"'], "receiver": "web"}],
        }
    )
    assert receivers_for(tree, {"team": "web", "severity": "warning"}) == ["web"]
    assert receivers_for(tree, {"team": "web", "severity": "info"}) == ["default"]


def test_continue_on_every_child_collects_each_receiver_once() -> None:
    tree = route(
        {
            "receiver": "default",
            "routes": [
                {"matchers": ['a="1"'], "receiver": "x", "continue": True},
                {"matchers": ['b="1"'], "receiver": "y", "continue": True},
                {"matchers": ['a="1"'], "receiver": "x", "continue": True},
            ],
        }
    )
    assert receivers_for(tree, {"a": "1", "b": "1"}) == ["x", "y"]
    assert receivers_for(tree, {"b": "1"}) == ["y"]
    assert receivers_for(tree, {}) == ["default"]


def test_a_child_without_receiver_or_matchers_takes_everything_for_its_parent() -> None:
    tree = route({"receiver": "root", "routes": [{"routes": [{"matchers": ['x="1"']}]}]})
    assert receivers_for(tree, {"x": "1"}) == ["root"]
    assert receivers_for(tree, {"x": "2"}) == ["root"]


def test_a_tree_without_any_receiver_routes_nowhere() -> None:
    assert receivers_for(route({"routes": [{"matchers": ['x="1"']}]}), {"x": "1"}) == []


CONFIG = """\
inventory:
  ssh: {key: k}
  hosts: [{name: web-1, address: 127.0.0.1}]
notify:
  receivers: [{name: r, urls: ["json://127.0.0.1:9/x"]}]
  route:
    receiver: r
    routes:
      - routes:
          - matchers: ['a="1"', %s]
"""


def test_loading_the_config_names_file_line_and_field_of_a_bad_matcher(tmp_path: Path) -> None:
    path = tmp_path / "lazarus.yaml"
    path.write_text(CONFIG % "'nonsense'")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    (error,) = getattr(caught.value, "errors", [caught.value])
    assert (error.line, error.field) == (10, "notify.route.routes[0].routes[0].matchers[1]")
    assert "cannot read matcher 'nonsense'" in str(error)
    path.write_text(CONFIG % "'b=~\"x|y\"'")
    assert load_config(path).notify.route is not None


def test_loading_the_config_refuses_matchers_on_the_root(tmp_path: Path) -> None:
    path = tmp_path / "lazarus.yaml"
    path.write_text(
        CONFIG.replace("    receiver: r\n", "    receiver: r\n    matchers: [a=b]\n") % "'b=c'"
    )
    with pytest.raises(ConfigError, match="root route matches everything"):
        load_config(path)
