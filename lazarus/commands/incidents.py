"""`lazarus incidents`: what is open, what happened, who acked and approved, and what Lazarus
did about it."""

from __future__ import annotations

import argparse
import time

from lazarus.commands import UsageError, add_config, add_json, load, print_json
from lazarus.oncall import details, summary, timeline, when
from lazarus.store import Store, store_for


def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("incidents", help="list incidents (active by default) from the store")
    add_config(p)
    add_json(p)
    p.add_argument("--all", action="store_true", help="recent ones too, not only active")
    p.add_argument("--show", type=int, metavar="ID", help="one incident with its whole timeline")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    config = load(args)
    store = store_for(config)
    now = time.time()
    try:
        if args.show is not None:
            return _show(store, args.show, args.json, now)
        incidents = store.recent(100) if args.all else store.active()
        if args.json:
            print_json([summary(store, i, now) for i in incidents])
            return 0
        if not incidents:
            print("no incidents" if args.all else "no active incidents")
        for i in incidents:
            s = summary(store, i, now)
            acked = f"  acked by {s['acked_by']}" if s["acked_by"] else ""
            print(f"#{i.id:<5} {i.state:<11} {when(i.detected_at)}  {i.fingerprint}  {i.reason}"
                  f"{acked}")  # fmt: skip
        return 0
    finally:
        store.close()


def _show(store: Store, incident_id: int, as_json: bool, now: float) -> int:
    try:
        i = store.get(incident_id)
    except KeyError:
        raise UsageError(f"no incident {incident_id} in this config's store") from None
    if as_json:
        print_json(details(store, i, now))
        return 0
    s = summary(store, i, now)
    print(f"incident #{i.id} {i.fingerprint} [{i.severity}] {i.state}")
    print(f"  summary   {i.summary}")
    print(f"  acked by  {s['acked_by'] or '-'}")
    print(f"  approval  {s['approved_by'] or '-'}")
    print(f"  reason    {i.reason or '-'}")
    print(f"  flow run  {i.flow_run_url or '-'}")
    for e in timeline(store, i):
        result = ("ok" if e.ok else "FAILED") + (f" {e.detail[:120]!r}" if e.detail else "")
        who = f" by {e.who}" if e.who else ""
        print(f"  {when(e.at)}  {e.what}{who}: {result}")
    return 0
