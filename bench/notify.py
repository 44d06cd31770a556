"""Notification figures on real local sinks (aiosmtpd SMTP and the HTTP capture server).

    python bench/notify.py --latency 50 --rate 1000 --seconds 10

1. Detection-to-delivered latency: an alert is recorded at detection time, the dispatcher
   flushes (group_wait 0s) and apprise delivers; the sink's receipt time closes the interval.
   p50/p95 for a chat webhook (json://) and for email (mailto://).
2. A storm: ``--rate`` new alerts per second for ``--seconds`` seconds, in real time, over
   ``--groups`` services; a dispatcher flushes once a second (a watch cycle) with group_wait 1s
   and group_interval 2s. After the storm it drains, then counts what should have been said
   (distinct alerts) against what was said (the FIRING count of each group's last message,
   which is exact even where the listing is cut short), and the messages it took.
Needs no root. Prints the figures; asserts nothing about time.
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

from lazarus.config import Notify
from lazarus.notify.dispatch import flush, record
from lazarus.notify.send import deliver_with_retries
from lazarus.notify.state import Alert, NotifyState
from lazarus.sandbox.sinks import SinkProcess
from lazarus.store import Store

_FIRING = re.compile(r"^\[FIRING:(\d+)")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def notify_config(sinks: SinkProcess, receiver: str, **route: object) -> Notify:
    urls = {
        "chat": f"json://127.0.0.1:{sinks.http_port}/chat",
        "mail": f"mailto://127.0.0.1:{sinks.smtp_port}?from=lazarus@x.test&to=oncall@x.test",
    }
    return Notify.model_validate(
        {
            "receivers": [{"name": receiver, "urls": [urls[receiver]]}],
            "route": {"receiver": receiver, **route},
            "retries": 0,
        }
    )


def alert(index: int, host: str, service: str, at: float) -> Alert:
    labels = {"host": host, "service": service, "symptom": "latency_high", "severity": "warning"}
    return Alert(f"{service}@{host}/latency_high/{index}", labels, f"alert {index}", at)


def latency(sinks: SinkProcess, state: NotifyState, receiver: str, count: int) -> list[float]:
    """Seconds from detection to the sink's receipt, one alert (one group) at a time."""
    cfg = notify_config(sinks, receiver, group_by=["host"], group_wait="0s")
    kind = "http" if receiver == "chat" else "mail"
    seen = len(sinks.messages(kind))
    figures = []
    for i in range(count):
        detected = time.time()
        record(state, cfg, [alert(i, f"{receiver}-{i}", "api", detected)], detected)
        for n in flush(state, cfg, time.time()):
            deliver_with_retries(state, cfg, n)
        received = sinks.messages(kind)[seen:]
        seen += len(received)
        figures += [r["received_at"] - detected for r in received]
    return figures


def storm(sinks: SinkProcess, state: NotifyState, rate: int, seconds: int, groups: int) -> None:
    cfg = notify_config(sinks, "chat", group_by=["service"], group_wait="1s",
                        group_interval="2s")  # fmt: skip
    seen = len(sinks.messages("http"))
    start, firing, busiest = time.time(), [], 0.0
    for second in range(seconds):
        began = time.time()
        batch = [
            alert(second * rate + i, f"h{i % 100}", f"svc-{i % groups}", time.time())
            for i in range(rate)
        ]
        firing += batch
        record(state, cfg, batch, time.time())
        for n in flush(state, cfg, time.time()):
            deliver_with_retries(state, cfg, n)
        busiest = max(busiest, time.time() - began)
        time.sleep(max(start + second + 1 - time.time(), 0))
    for _ in range(5):  # drain: one group_interval more, bounded
        time.sleep(2.05)
        for n in flush(state, cfg, time.time()):
            deliver_with_retries(state, cfg, n)
    messages = sinks.messages("http")[seen:]
    last: dict[str, int] = {}
    for m in messages:
        title = m["json"]["title"]
        found = _FIRING.match(title)
        if found:
            last[title.rsplit(" on ", 1)[-1]] = int(found.group(1))  # "... on service svc-3"
    said = sum(last.values())
    print(f"storm: {rate}/s for {seconds}s over {groups} groups -> {len(firing)} alerts expected,"
          f" {said} said in {len(messages)} messages ({len(last)} groups); "
          f"{'nothing lost' if said == len(firing) else f'LOST {len(firing) - said}'}")  # fmt: skip
    print(f"storm: the busiest 1 s cycle (record {rate} + flush + deliver) took {busiest:.2f} s")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency", type=int, default=50, help="alerts timed per channel")
    parser.add_argument("--rate", type=int, default=1000, help="storm alerts per second")
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--groups", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="lazarus-bench-notify-") as tmp:
        store = Store(Path(tmp) / "lazarus.db")
        state = NotifyState(store)
        with SinkProcess(Path(tmp) / "sinks") as sinks:
            for receiver in ("chat", "mail"):
                figures = latency(sinks, state, receiver, args.latency)
                p50, p95 = statistics.median(figures), percentile(figures, 0.95)
                print(f"latency {receiver}: detection -> delivered p50 {p50 * 1000:.1f} ms,"
                      f" p95 {p95 * 1000:.1f} ms ({len(figures)} messages)")  # fmt: skip
            storm(sinks, state, args.rate, args.seconds, args.groups)
        store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
