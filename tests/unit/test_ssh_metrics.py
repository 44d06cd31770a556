from __future__ import annotations

from lazarus.sources.ssh_metrics import _SEPARATOR, parse

OUTPUT = f"""0.52 0.40 0.31 1/234 5678
{_SEPARATOR}
MemTotal:       16000000 kB
MemFree:         1000000 kB
MemAvailable:    4000000 kB
{_SEPARATOR}
Filesystem     1024-blocks     Used Available Capacity Mounted on
/dev/vda         100000    91000      9000      91% /
tmpfs                 0        0         0       0% /dev/shm
"""


def test_parse_all_sections() -> None:
    samples = {(s.series, s.label("mount")): s.value for s in parse(OUTPUT, host="h1", at=0.0)}
    assert samples == {
        ("load1", ""): 0.52,
        ("mem_available_ratio", ""): 0.25,
        ("disk_used_ratio", "/"): 0.91,
    }


def test_garbled_sections_are_skipped() -> None:
    assert [s.series for s in parse("0.1 0.2 0.3", host="h1", at=0.0)] == ["load1"]
    assert parse("", host="h1", at=0.0) == []


def test_non_numeric_values_do_not_crash_a_cycle() -> None:
    text = f"abc def\n{_SEPARATOR}\nMemTotal: lots kB\n{_SEPARATOR}\n"
    assert parse(text, host="h1", at=0.0) == []
