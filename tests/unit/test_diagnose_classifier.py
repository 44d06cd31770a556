"""The cause classifier: learnt from a labelled history of realistic log lines, checked held out.

The history is generated here: each cause has its own kinds of log line (with fresh numbers,
ids, paths and hosts each time), buried among the noise every service logs, under symptoms that
do not give the cause away. ``tests/data/diagnose_history.jsonl`` is ``history(12, seed=7)``.
"""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

import numpy as np
import pytest

from lazarus.cli import main
from lazarus.config import load_config
from lazarus.diagnose import DependencyGraph, gather, rank
from lazarus.diagnose.classifier import CAP, Classifier, TrainingError, cross_validate
from lazarus.diagnose.features import Example, features, load_history
from lazarus.errors import ConfigError
from lazarus.model import Anomaly
from lazarus.store import Store
from tests.unit.test_diagnose_cli import CONFIG  # api depends on orders-db

SHIPPED = Path(__file__).parents[1] / "data" / "diagnose_history.jsonl"
BOUND = 0.9  # held-out accuracy a working model reaches and a guessing one does not

SERVICES = ["api", "checkout", "search", "orders-db", "billing", "auth"]
SYMPTOMS = ["service_down", "service_unhealthy", "latency_high", "error_rate_high"]


def _cause_lines(cause: str, r: random.Random) -> list[str]:
    n, pid, port = r.randint(1, 9999), r.randint(100, 65000), r.choice([5432, 6379, 8080, 443])
    svc, dep = r.choice(SERVICES), r.choice(SERVICES)
    seg = f"{r.getrandbits(64):016x}"
    lines = {
        "disk_full": [
            f"ERROR [writer-{n}] write /var/lib/{svc}/data/seg-{seg}.log failed: "
            "No space left on device",
            f'FATAL: could not extend file "base/{n}/{pid}": No space left on device',
            f"WARN disk usage at {r.randint(95, 100)}% on /dev/sda{r.randint(1, 4)}",
            f"ERROR flush of memtable {n} aborted: ENOSPC",
        ],
        "oom": [
            f"kernel: Out of memory: Killed process {pid} ({svc}) total-vm:{n * 1000}kB, "
            f"anon-rss:{n * 900}kB",
            f"kernel: {svc} invoked oom-killer: gfp_mask=0x{n:x}, order=0, oom_score_adj=0",
            "Exception in thread main java.lang.OutOfMemoryError: Java heap space",
            f"WARN heap usage {r.randint(90, 99)}% after full GC ({n} ms)",
        ],
        "dependency_down": [
            f"ERROR upstream {dep}.internal:{port} connect failed: Connection refused",
            f"WARN retrying request to http://{dep}:{port}/v1/orders ({r.randint(1, 5)}/5)",
            f"ERROR circuit breaker open for {dep} after {n} failures",
            f"ERROR request {seg} failed: upstream timed out after {n} ms",
        ],
        "fd_exhausted": [
            f"[alert] {pid}#0: accept4() failed (24: Too many open files)",
            f"ERROR socket: too many open files; sleeping {n}ms before retry",
            f"WARN open file descriptors {n}/{n} for pid {pid}",
            f"ERROR failed to open /proc/{pid}/stat: EMFILE",
        ],
        "cert_expired": [
            f"x509: certificate has expired or is not yet valid: current time "
            f"2026-11-{r.randint(10, 28)}T05:{n % 60:02d}:00Z is after 2026-11-01T00:00:00Z",
            f"TLS handshake with {dep}.internal:{port} failed: CERT_HAS_EXPIRED",
            f"ERROR SSL_ERROR_EXPIRED_CERT from {dep} ({seg})",
        ],
        "bad_release": [
            "panic: runtime error: invalid memory address or nil pointer dereference",
            f"goroutine {n} [running]:",
            f"ERROR unhandled KeyError 'customer_tier' in handler /v2/cart/{seg}",
            f"INFO starting {svc} version 4.{n % 30}.{pid % 10} build {seg[:8]}",
        ],
    }[cause]
    return r.sample(lines, r.randint(1, min(3, len(lines))))


def _noise(r: random.Random) -> list[str]:
    n, rid = r.randint(1, 999), f"{r.getrandbits(128):032x}"
    lines = [
        f"INFO GET /health 200 {n}ms",
        f"INFO request id={rid} completed in {n}ms",
        f"DEBUG cache hit ratio 0.{n}",
        f"INFO worker-{n % 16} heartbeat ok",
        f"WARN slow query took {n * 10} ms",
        f"ERROR request {rid} failed with status 503",
    ]
    return r.sample(lines, r.randint(2, 4))


def incident(cause: str, r: random.Random) -> dict:
    """One past incident of ``cause`` as a JSONL record."""
    lines = _noise(r) + _cause_lines(cause, r)
    r.shuffle(lines)
    stamp = f"2026-11-{r.randint(1, 28):02d} {r.randint(0, 23):02d}:{r.randint(0, 59):02d}:00"
    return {
        "symptom": r.choice(SYMPTOMS),
        "service": r.choice(SERVICES),
        "host": f"web-{r.randint(1, 40)}",
        "lines": [f"{stamp} {line}" for line in lines],
        "peers_failing": r.randint(1, 3) if cause == "dependency_down" else int(r.random() < 0.15),
        "changes": ["release"] if cause == "bad_release" or r.random() < 0.1 else [],
        "dependency_anomalies": ["service_down"] if cause == "dependency_down" else [],
        "cause": cause,
    }


CAUSES = ["bad_release", "cert_expired", "dependency_down", "disk_full", "fd_exhausted", "oom"]


def history(per_cause: int, seed: int) -> list[dict]:
    r = random.Random(seed)
    return [incident(c, r) for _ in range(per_cause) for c in CAUSES]


def examples(records: list[dict]) -> list[Example]:
    return [Example.model_validate(rec) for rec in records]


def accuracy(model: Classifier, held: list[Example]) -> float:
    best = model.probabilities(held).argmax(axis=1)
    return float(np.mean([model.classes[i] == e.cause for i, e in zip(best, held, strict=True)]))


def write(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(rec) + "\n" for rec in records))
    return path


@pytest.fixture(scope="module")
def trained() -> Classifier:
    return Classifier.train(examples(history(15, seed=1)))


def test_held_out_incidents_are_classified(trained: Classifier) -> None:
    held = examples(history(20, seed=2))
    assert trained.trained_on == 90
    assert trained.classes == tuple(CAUSES)
    assert accuracy(trained, held) >= BOUND


def test_shuffled_labels_do_not_reach_the_bound() -> None:
    train = history(15, seed=1)
    labels = [rec["cause"] for rec in train]
    random.Random(3).shuffle(labels)
    relabelled = [{**rec, "cause": c} for rec, c in zip(train, labels, strict=True)]
    shuffled = Classifier.train(examples(relabelled))
    assert accuracy(shuffled, examples(history(20, seed=2))) < 0.5


def test_cross_validation_reports_held_out_accuracy() -> None:
    score = cross_validate(examples(history(10, seed=4)))
    assert (score.total, score.folds) == (60, 5)
    assert score.accuracy >= BOUND
    again = cross_validate(examples(history(10, seed=4)))
    assert again == score  # deterministic


def test_masking_keeps_ids_out_of_the_features() -> None:
    r = random.Random(5)
    one, two = (features(Example.model_validate(incident("disk_full", r))) for _ in range(2))
    assert not any(ch.isdigit() for f in one | two for ch in f)
    assert {"word:space", "word:device"} <= one & two or "word:enospc" in one & two


def test_save_load_round_trip_gives_identical_probabilities(
    trained: Classifier, tmp_path: Path
) -> None:
    path = tmp_path / "model.npz"
    trained.save(path)
    loaded = Classifier.load(path)
    held = examples(history(3, seed=6))
    assert loaded.classes == trained.classes and loaded.counts == trained.counts
    np.testing.assert_array_equal(loaded.probabilities(held), trained.probabilities(held))
    with np.load(path, allow_pickle=False) as data:
        assert sorted(data.files) == ["classes", "counts", "vocabulary", "weights"]


def test_a_file_that_is_no_model_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "bad.npz"
    np.savez(bad, weights=np.zeros(3))
    with pytest.raises(ConfigError, match=r"bad\.npz: not a Lazarus classifier model"):
        Classifier.load(bad)
    with pytest.raises(ConfigError, match="cannot read the model"):
        Classifier.load(tmp_path / "missing.npz")


def test_training_refuses_one_cause_or_too_few_examples() -> None:
    one = [rec for rec in history(3, seed=8) if rec["cause"] == "oom"]
    with pytest.raises(TrainingError, match=r"at least 2 different causes.*found: oom"):
        Classifier.train(examples(one))
    lonely = [rec for rec in history(3, seed=8) if rec["cause"] != "cert_expired"]
    lonely.append(history(1, seed=9)[1])  # one cert_expired
    with pytest.raises(TrainingError, match=r"too few for: cert_expired \(1\)"):
        Classifier.train(examples(lonely))


def test_bad_jsonl_lines_are_named(tmp_path: Path) -> None:
    good = json.dumps(history(1, seed=10)[0])
    path = tmp_path / "history.jsonl"
    path.write_text(
        f"{good}\n\n{{not json\n"
        + json.dumps({"symptom": "service_down", "lines": ["x"], "colour": "red", "cause": "oom"})
        + "\n"
        + json.dumps({"symptom": "service_down", "lines": "one line", "cause": "oom"})
        + "\n"
        + json.dumps({"symptom": "service_down"})
        + "\n[1, 2]\n"
    )
    with pytest.raises(ConfigError) as caught:
        load_history(path)
    errors = [str(e) for e in caught.value.errors]
    assert errors[0].startswith(f"{path}:3: not valid JSON")
    assert errors[1] == f"{path}:4: colour: unknown field 'colour'"
    assert errors[2].startswith(f"{path}:5: lines: ")
    assert errors[3] == f"{path}:6: cause: missing the confirmed 'cause'"
    assert errors[4] == f"{path}:7: each line must be a JSON object"
    assert len(errors) == 5


def test_history_ids_default_to_file_and_line(tmp_path: Path) -> None:
    records = history(1, seed=11)
    records[1]["id"] = "INC-1042"
    loaded = load_history(write(tmp_path / "h.jsonl", records))
    assert [e.id for e in loaded[:3]] == ["h.jsonl:1", "INC-1042", "h.jsonl:3"]


def test_rank_adds_the_classifier_below_stronger_evidence(
    trained: Classifier, tmp_path: Path
) -> None:
    (tmp_path / "lazarus.yaml").write_text(CONFIG)
    config = load_config(tmp_path / "lazarus.yaml")
    store = Store(tmp_path / "state.db")
    try:
        db, _ = store.open_incident(
            Anomaly("db-1", "orders-db", "service_down", "critical", "down", 100.0)
        )
        api, _ = store.open_incident(
            Anomaly("web-1", "api", "service_down", "critical", "down", 130.0)
        )
        graph = DependencyGraph.of(config)
        full = ("db-1", "orders-db", "kernel: Out of memory: Killed process 4242 (postgres)")
        quiet = ("db-1", "orders-db", "WARN heap usage 97% after full GC (812 ms)")
        ev = gather(store, config, db, lines=[quiet])
        causes = rank(ev, graph, [], model=trained)
        assert causes[0].name == "oom" and causes[0].target == "orders-db@db-1"
        assert causes[0].confidence <= CAP
        assert causes[0].evidence[0].startswith("classifier (trained on 90 incidents): p=")
        assert "word:heap" in causes[0].evidence[0]
        # the dependency graph outranks what the classifier thinks of the api's own lines
        ev = gather(store, config, api, lines=[("web-1", "api", full[2])])
        causes = rank(ev, graph, [], model=trained)
        assert (causes[0].name, causes[0].target) == ("dependency_down", "orders-db")
        assert any(c.name == "oom" for c in causes[1:])
    finally:
        store.close()


def test_cli_train_prints_counts_and_accuracy_and_writes_the_model(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = tmp_path / "model.npz"
    assert main(["diagnose", "train", str(SHIPPED), "--output", str(model)]) == 0
    out = capsys.readouterr().out
    assert "72 labelled incidents, 6 causes" in out
    assert re.search(r"^  disk_full +12$", out, re.MULTILINE)
    assert "held-out accuracy (5-fold cross-validation): " in out
    figure = float(out.split("held-out accuracy (5-fold cross-validation): ")[1].split()[0])
    assert figure >= BOUND
    assert Classifier.load(model).trained_on == 72


def test_cli_train_refuses_bad_input_with_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    one = write(tmp_path / "one.jsonl", [r for r in history(3, seed=12) if r["cause"] == "oom"])
    assert main(["diagnose", "train", str(one), "--output", str(tmp_path / "m.npz")]) == 2
    assert "need at least 2 different causes" in capsys.readouterr().err
    assert not (tmp_path / "m.npz").exists()
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"symptom": "x", "cause": "oom"}\n{oops\n')
    assert main(["diagnose", "train", str(broken), "--output", str(tmp_path / "m.npz")]) == 2
    assert f"error: {broken}:2: not valid JSON" in capsys.readouterr().err
    nowhere = str(tmp_path / "no" / "m.npz")
    assert main(["diagnose", "train", str(SHIPPED), "--output", nowhere]) == 2
    assert f"error: cannot write {nowhere}: No such file or directory" in capsys.readouterr().err


def test_cli_incident_uses_a_model(
    trained: Classifier, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "lazarus.yaml").write_text(CONFIG)
    store = Store(tmp_path / "state.db")
    store.open_incident(Anomaly("db-1", "orders-db", "service_down", "critical", "down", 100.0))
    store.close()
    trained.save(tmp_path / "model.npz")
    log = tmp_path / "db.log"
    log.write_text("WARN heap usage 97% after full GC (812 ms)\n")
    argv = ["diagnose", "incident", "-c", str(tmp_path / "lazarus.yaml"), "1", "--log", str(log)]
    assert main([*argv, "--model", str(tmp_path / "model.npz")]) == 0
    assert capsys.readouterr().out.startswith("Probable cause: oom (orders-db@db-1)")
    assert main(argv) == 0
    assert capsys.readouterr().out.startswith("Probable cause: local_fault")
    # named in the config, the model is used without --model; `lazarus check` loads it
    (tmp_path / "lazarus.yaml").write_text(CONFIG + "diagnose: {model: model.npz}\n")
    assert main(argv) == 0
    assert capsys.readouterr().out.startswith("Probable cause: oom (orders-db@db-1)")
    assert main(["check", "--no-secrets", "-c", str(tmp_path / "lazarus.yaml")]) == 0
    (tmp_path / "model.npz").write_bytes(b"not a model")
    assert main(["check", "--no-secrets", "-c", str(tmp_path / "lazarus.yaml")]) == 2
    assert ": diagnose.model: not a Lazarus classifier model" in capsys.readouterr().err


def test_the_shipped_history_is_the_documented_sample() -> None:
    shipped = [e.model_dump(exclude={"id"}) for e in load_history(SHIPPED)]
    assert shipped == [e.model_dump(exclude={"id"}) for e in examples(history(12, seed=7))]
