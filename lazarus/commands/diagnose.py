"""`lazarus diagnose incident|check|train|kinds`: rank an incident's causes by hand; validate
signatures; learn a cause classifier from labelled history; list the recurring kinds in it.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

from lazarus.commands import UsageError, add_config, load, print_errors
from lazarus.diagnose.classifier import Classifier, TrainingError, cross_validate
from lazarus.diagnose.diagnosis import configured_model, diagnose
from lazarus.diagnose.features import load_history
from lazarus.diagnose.inputs import diagnosis_inputs
from lazarus.diagnose.kinds import THRESHOLD, cluster, telling_line
from lazarus.diagnose.signatures import DEFAULT_PATH, load_signatures
from lazarus.errors import ConfigError
from lazarus.store import store_for


def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("diagnose", help="probable causes of an incident; check signatures")
    cmds = p.add_subparsers(dest="diagnose_cmd", required=True)
    i = cmds.add_parser("incident", help="rank the probable causes of incident ID")
    add_config(i)
    i.add_argument("id", type=int, help="the incident number (lazarus incidents)")
    i.add_argument(
        "--log",
        action="append",
        default=[],
        metavar="FILE",
        help="more log lines of its target, beside those the watch kept (repeatable)",
    )
    i.add_argument("--signatures", default=str(DEFAULT_PATH), metavar="FILE",
                   help="the log signatures to match (default: the shipped ones)")  # fmt: skip
    i.add_argument("--model", metavar="MODEL.npz", help="a trained classifier to rank with too")
    i.add_argument("--markdown", action="store_true", help="the full report, not one paragraph")
    i.set_defaults(func=show)
    c = cmds.add_parser("check", help="validate a signatures file; exit 2 on any error")
    c.add_argument("file", nargs="?", default=str(DEFAULT_PATH),
                   help="signatures YAML (default: the shipped one)")  # fmt: skip
    c.set_defaults(func=check)
    t = cmds.add_parser("train", help="learn a cause classifier from labelled history (JSONL)")
    t.add_argument("history", metavar="HISTORY.jsonl", help="labelled incidents, one a line")
    t.add_argument("--output", "-o", required=True, metavar="MODEL.npz",
                   help="where to write the model")  # fmt: skip
    t.set_defaults(func=train)
    k = cmds.add_parser("kinds", help="cluster a history (JSONL) into recurring kinds")
    k.add_argument("history", metavar="HISTORY.jsonl", help="incidents, one a line")
    k.add_argument(
        "--threshold",
        type=float,
        default=THRESHOLD,
        help=f"cosine distance that separates kinds (default {THRESHOLD}; lower: more kinds)",
    )
    k.add_argument("--examples", type=int, default=3, help="incidents shown per kind")
    k.set_defaults(func=kinds)


def check(args: argparse.Namespace) -> int:
    try:
        signatures = load_signatures(args.file)
    except ConfigError as exc:
        return print_errors(exc)
    print(f"{args.file}: ok ({len(signatures)} signatures)")
    return 0


def show(args: argparse.Namespace) -> int:
    try:
        config = load(args)
        signatures = load_signatures(args.signatures)
        model = Classifier.load(args.model) if args.model else configured_model(config)
    except ConfigError as exc:
        return print_errors(exc)
    store = store_for(config)
    try:
        try:
            incident = store.get(args.id)
        except KeyError:
            raise UsageError(f"no incident {args.id} in {config.state.path}") from None
        seen, changes = diagnosis_inputs(store, incident)  # what the watch kept, as recover
        lines = [
            *seen,
            *(
                (incident.host, incident.service, line)
                for path in args.log
                for line in Path(path).read_text(errors="replace").splitlines()
            ),
        ]
        diagnosis = diagnose(
            store,
            config,
            incident,
            lines=lines,
            changes=changes,
            signatures=signatures,
            model=model,
        )
    finally:
        store.close()
    print(diagnosis.markdown() if args.markdown else diagnosis.text)
    return 0


def train(args: argparse.Namespace) -> int:
    try:
        examples = load_history(args.history)
        model = Classifier.train(examples)
        score = cross_validate(examples)
    except ConfigError as exc:
        return print_errors(exc)
    except TrainingError as exc:
        print(f"error: {args.history}: {exc}", file=sys.stderr)
        return 2
    print(
        f"{args.history}: {model.trained_on} labelled incidents, {len(model.classes)} causes,"
        f" {len(model.vocabulary.names)} features"
    )
    width = max(len(c) for c in model.classes)
    for cause, count in zip(model.classes, model.counts, strict=True):
        print(f"  {cause:<{width}}  {count:>4}")
    print(
        f"held-out accuracy ({score.folds}-fold cross-validation): {score.accuracy:.3f}"
        f" ({score.correct}/{score.total})"
    )
    try:
        model.save(args.output)
    except OSError as exc:
        print(f"error: cannot write {args.output}: {exc.strerror}", file=sys.stderr)
        return 2
    print(f"wrote {args.output}")
    return 0


def kinds(args: argparse.Namespace) -> int:
    try:
        examples = load_history(args.history, labelled=False)
        found = cluster(examples, threshold=args.threshold)
    except ConfigError as exc:
        return print_errors(exc)
    except ValueError as exc:
        print(f"error: {args.history}: {exc}", file=sys.stderr)
        return 2
    print(
        f"{args.history}: {len(examples)} incidents in {len(found)} kinds"
        f" (cosine distance threshold {args.threshold:g})"
    )
    for n, kind in enumerate(found, 1):
        members = [examples[i] for i in kind.members]
        causes = Counter(e.cause for e in members if e.cause)
        print(f"\nkind {n}: {len(members)} incident(s): {kind.name}")
        if causes:
            print("  causes: " + ", ".join(f"{c} {k}" for c, k in causes.most_common()))
        for e in members[: args.examples]:
            cause = f"  ({e.cause})" if e.cause else ""
            print(f"  {e.id}  {e.target or '-'}  {e.symptom}{cause}")
            if line := telling_line(e, kind):
                print(f"      {line.strip()[:160]}")
    return 0
