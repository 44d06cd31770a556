"""Cron-like maintenance windows, the notify config they live in, and route inheritance."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from lazarus.config import Notify, Route
from lazarus.errors import ConfigError
from lazarus.notify.route import routes_for
from lazarus.notify.windows import parse_cron, window_open


def at(*args: int) -> float:
    return datetime(*args, tzinfo=UTC).timestamp()


@pytest.mark.parametrize(
    ("schedule", "field", "values"),
    [
        ("*/15 * * * *", "minutes", {0, 15, 30, 45}),
        ("0 9-17/4 * * *", "hours", {9, 13, 17}),
        ("0 0 1,15 * *", "days", {1, 15}),
        ("0 0 * jan-mar *", "months", {1, 2, 3}),
        ("0 0 * * mon-fri", "weekdays", {1, 2, 3, 4, 5}),
        ("0 0 * * 7", "weekdays", {0}),
    ],
)
def test_cron_fields_read_as_crontab_does(schedule: str, field: str, values: set[int]):
    assert getattr(parse_cron(schedule), field) == values


@pytest.mark.parametrize("bad", ["* * * *", "61 * * * *", "0 0 * * funday", "*/0 * * * *"])
def test_a_bad_schedule_says_so(bad: str):
    with pytest.raises(ConfigError, match="schedule"):
        parse_cron(bad)


def test_a_window_is_open_from_its_start_for_its_duration():
    # Sunday 2026-11-29 02:00 UTC, for 2 hours
    assert window_open("0 2 * * sun", 7200, at(2026, 11, 29, 1, 59)) is None
    assert window_open("0 2 * * sun", 7200, at(2026, 11, 29, 2, 0)) == at(2026, 11, 29, 2, 0)
    assert window_open("0 2 * * sun", 7200, at(2026, 11, 29, 3, 59, 59)) == at(2026, 11, 29, 2)
    assert window_open("0 2 * * sun", 7200, at(2026, 11, 29, 4, 0)) is None
    assert window_open("0 2 * * sun", 7200, at(2026, 11, 30, 2, 30)) is None  # Monday


def test_a_window_across_midnight_and_day_or_weekday_rule():
    assert window_open("0 23 * * *", 3 * 3600, at(2026, 11, 30, 1, 0)) == at(2026, 11, 29, 23)
    # both day fields restricted: the 1st of the month OR a Monday (cron's rule)
    assert window_open("0 0 1 * mon", 60, at(2026, 11, 30, 0, 0)) is not None  # a Monday
    assert window_open("0 0 1 * mon", 60, at(2026, 12, 1, 0, 0)) is not None  # the 1st
    assert window_open("0 0 1 * mon", 60, at(2026, 12, 2, 0, 0)) is None


def notify(**data) -> Notify:
    return Notify.model_validate(
        {"receivers": [{"name": "ops", "urls": ["json://127.0.0.1:9/x"]}], **data}
    )


def test_notify_config_refuses_unknown_receivers_and_bad_schedules():
    with pytest.raises(ValidationError, match="fallback 'nobody'"):
        notify(fallback="nobody")
    with pytest.raises(ValidationError, match="receiver 'boss'"):
        notify(escalation=[{"levels": [{"receiver": "boss", "after": "5m"}]}])
    with pytest.raises(ValidationError, match="cron fields"):
        notify(maintenance=[{"name": "w", "schedule": "0 2 *", "duration": "1h"}])
    with pytest.raises(ValidationError, match="cannot read matcher"):
        notify(inhibit_rules=[{"source_matchers": ["a b"], "target_matchers": ['x="y"']}])
    with pytest.raises(ValidationError):
        notify(receivers=[{"name": "ops", "urls": ["json://x"], "rate_limit": {"max": 0}}])


def test_routes_inherit_group_settings_with_alertmanager_defaults():
    root = Route.model_validate(
        {
            "receiver": "ops",
            "group_by": ["host"],
            "routes": [
                {"matchers": ['team="db"'], "receiver": "dba", "group_wait": "5s"},
                {"matchers": ['team="web"'], "group_by": ["..."], "repeat_interval": "1h"},
            ],
        }
    )
    (db,) = routes_for(root, {"team": "db", "host": "h1"})
    assert (db.receiver, db.group_by, db.group_wait, db.group_interval, db.repeat_interval) == (
        "dba", ("host",), 5.0, 300.0, 14400.0,
    )  # fmt: skip
    (web,) = routes_for(root, {"team": "web", "host": "h1"})
    assert web.receiver == "ops" and web.repeat_interval == 3600.0 and web.group_wait == 30.0
    assert web.group_labels({"team": "web", "host": "h1"}) == {"host": "h1", "team": "web"}
    (rest,) = routes_for(root, {"team": "other", "host": "h2"})
    assert rest.path == "0" and rest.group_labels({"host": "h2", "x": "1"}) == {"host": "h2"}
