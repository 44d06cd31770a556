"""`lazarus incidents CONFIG`: what is open, what happened, and what Lazarus did about it."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime

from lazarus.config import load_config
from lazarus.store import Store


def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("incidents", help="list incidents (active by default) from the store")
    p.add_argument("config")
    p.add_argument("--all", action="store_true", help="recent ones too, not only active")
    p.add_argument(
        "--show", type=int, metavar="ID", help="one incident with deliveries and actions"
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    store = Store(config.path(config.state.path))
    try:
        if args.show is not None:
            return _show(store, args.show)
        incidents = store.recent(100) if args.all else store.active()
        if not incidents:
            print("no incidents" if args.all else "no active incidents")
        for i in incidents:
            print(f"#{i.id:<5} {i.state:<11} {_when(i.detected_at)}  {i.fingerprint}  {i.reason}")
        return 0
    finally:
        store.close()


def _show(store: Store, incident_id: int) -> int:
    try:
        i = store.get(incident_id)
    except KeyError:
        print(f"no incident {incident_id}")
        return 1
    print(f"incident #{i.id} {i.fingerprint} [{i.severity}] {i.state}")
    print(f"  summary   {i.summary}")
    for label, at in (
        ("detected", i.detected_at),
        ("notified", i.notified_at),
        ("acted", i.action_at),
        ("verified", i.verified_at),
        ("closed", i.closed_at),
    ):
        print(f"  {label:9} {_when(at)}")
    print(f"  reason    {i.reason or '-'}")
    print(f"  flow run  {i.flow_run_url or '-'}")
    for d in store.deliveries(i.id):
        outcome = "delivered" if d.ok else f"FAILED {d.error}"
        print(
            f"  notify    {_when(d.at)} {d.event} -> {d.receiver} (attempt {d.attempt}): {outcome}"
        )
    for a in store.actions(i.id):
        print(
            f"  action    {_when(a.at)} {a.action} by {a.actor}: {'ok' if a.ok else 'FAILED'} "
            f"{a.target} {a.detail[:120]!r}"
        )
    return 0


def _when(at: float | None) -> str:
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%d %H:%M:%S") if at else "-"
