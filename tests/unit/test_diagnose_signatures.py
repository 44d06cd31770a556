"""Log signatures: each shipped one fires on a real-looking line and not on its near-miss; a bad
signatures file fails with the line and field of each problem."""

from __future__ import annotations

from pathlib import Path

import pytest

from lazarus.diagnose import load_signatures
from lazarus.errors import ConfigError

SHIPPED = {s.name: s for s in load_signatures()}

# signature name -> (a line it must match, a near-miss it must not)
CASES = {
    "oom-killer": (
        "Nov 29 02:31:07 web-1 kernel: [81234.5] Out of memory: Killed process 4711 (java)"
        " total-vm:8388608kB, anon-rss:4194304kB",
        "Nov 29 02:31:07 web-1 kernel: oom_score_adj for process 4711 set to 0",
    ),
    "no-space-left": (
        "2026-11-29 02:31:07 ERROR could not write block 812 of relation base/16384/2619:"
        " No space left on device",
        "2026-11-29 02:31:07 INFO disk check: 12.4 GiB of space left on /dev/sda1",
    ),
    "connection-refused": (
        "2026-11-29 02:31:07 ERROR psycopg.OperationalError: connection to server at"
        ' "10.0.0.13", port 5432 failed: Connection refused',
        "2026-11-29 02:31:07 WARN request refused: client 10.0.0.9 over its rate limit",
    ),
    "too-many-open-files": (
        "2026/11/29 02:31:07 http: Accept error: accept tcp [::]:8080: accept4: too many open"
        " files; retrying in 5ms",
        "2026-11-29 02:31:07 INFO open files: 1021 of 65536",
    ),
    "certificate-expired": (
        "2026-11-29 02:31:07 ERROR x509: certificate has expired or is not yet valid: current"
        " time 2026-11-29T02:31:07Z is after 2026-11-28T00:00:00Z",
        "2026-11-29 02:31:07 WARN certificate for api.example.com expires in 14 days",
    ),
}


def test_the_shipped_set_covers_the_five_causes() -> None:
    causes = {s.cause for s in SHIPPED.values()}
    assert causes == {"oom", "disk_full", "dependency_refused", "fd_exhausted", "cert_expired"}
    assert set(CASES) == set(SHIPPED)


@pytest.mark.parametrize("name", sorted(CASES))
def test_signature_fires_on_a_real_line_and_not_on_its_near_miss(name: str) -> None:
    hit, near_miss = CASES[name]
    assert SHIPPED[name].search(hit)
    assert SHIPPED[name].search(near_miss) is None
    others = [s.name for s in SHIPPED.values() if s.name != name and s.search(hit)]
    assert others == []  # one line, one cause


def test_a_health_probe_summary_is_no_dependency_refusal() -> None:
    """The probe's own 'connection refused' is the symptom, not a refused dependency."""
    summary = "health probe failed 2 times in a row: [Errno 111] Connection refused"
    assert SHIPPED["connection-refused"].search(summary) is None


def _errors(tmp_path: Path, text: str) -> list[str]:
    path = tmp_path / "signatures.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_signatures(path)
    return [str(e).replace(str(tmp_path) + "/", "") for e in caught.value.errors]


def test_bad_signatures_file_names_each_line_and_field(tmp_path: Path) -> None:
    text = (
        "version: 1\n"
        "signatures:\n"
        "  - name: ok\n"
        "    cause: disk_full\n"
        "    pattern: 'no space'\n"
        "    confidence: 0.9\n"
        "  - name: broken\n"
        "    cause: oom\n"
        "    pattern: 'out of (memory'\n"
        "    confidence: 1.5\n"
        "    colour: red\n"
        "    scope: [logs, stdout]\n"
    )
    assert _errors(tmp_path, text) == [
        "signatures.yaml:9: signatures[1].pattern: not a valid regex:"
        " missing ), unterminated subpattern at position 7",
        "signatures.yaml:12: signatures[1].scope[1]: Input should be 'logs' or 'summary'",
        "signatures.yaml:10: signatures[1].confidence: Input should be less than or equal to 1",
        "signatures.yaml:11: signatures[1].colour: unknown field 'colour'",
    ]


def test_duplicate_names_and_missing_fields_are_located(tmp_path: Path) -> None:
    text = (
        "version: 1\n"
        "signatures:\n"
        "  - {name: a, cause: oom, pattern: x, confidence: 0.5}\n"
        "  - {name: a, cause: oom, pattern: y, confidence: 0.5}\n"
    )
    assert _errors(tmp_path, text) == [
        "signatures.yaml:4: signatures[1].name: duplicate signature name 'a'"
    ]
    assert _errors(tmp_path, "version: 1\nsignatures:\n  - {name: a, pattern: x}\n") == [
        "signatures.yaml:3: signatures[0].cause: missing required field 'cause'",
        "signatures.yaml:3: signatures[0].confidence: missing required field 'confidence'",
    ]


def test_unless_turns_a_hit_into_a_near_miss(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(
        "version: 1\nsignatures:\n"
        "  - {name: x, cause: oom, pattern: 'killed', unless: 'by operator', confidence: 0.5}\n"
    )
    (sig,) = load_signatures(path)
    assert sig.search("worker 3 killed (signal 9)") == "killed"
    assert sig.search("worker 3 killed by operator") is None
