"""Broker faults under load: a broker of a 3-node Kafka SIGKILLed and restarted under reads
and writes, figures recorded in bench/RESULTS.md (the ``broker_faults`` section).

The scenario is the end-to-end test's (tests/e2e/test_broker_faults.py, the code in
tests/support/broker_faults.py): a local 3-node Apache Kafka (``goka.localkafka``, KRaft,
replication factor 3, ``min.insync.replicas=2``); 3 click-count processors serving, with a
hot standby each; 2 view pods of one view group with R=2; a router; an emitter clicking about
200 times a second over 300 keys and a client reading random keys with consistency ANY in a
loop through the router and the view pods. The broker leading the discovery topic's partition
(and a table partition) is SIGKILLed, and restarted on its data ``--down`` seconds later.

Per run: how long the discovery partition had no leader, the reads and how many failed, the
clicks delivered and counted (at-least-once surplus), how long the membership was held stale,
live members it dropped, nodes that exited, view rows replayed and stores wiped. The last line
printed is JSON; ``--record`` adds a dated section to bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench._common import add_to_results, kafka_machine  # noqa: E402
from goka.localkafka import KAFKA_VERSION, LocalKafka  # noqa: E402
from tests.support.broker_faults import FaultRun, run_broker_faults  # noqa: E402

COLUMNS: tuple[tuple[str, Callable[[FaultRun], str]], ...] = (
    ("leader moved s", lambda r: f"{r.leader_moved_s:.1f}"),
    ("stale s", lambda r: f"{r.stale_s:.1f}"),
    ("reads", lambda r: f"{r.reads:,}"),
    ("in outage", lambda r: f"{r.reads_during_outage:,}"),
    ("failed", lambda r: f"{len(r.failed_reads):,}"),
    ("success", lambda r: f"{100 * r.read_success:.2f}%"),
    ("delivered", lambda r: f"{sum(r.delivered.values()):,}"),
    ("surplus", lambda r: f"{r.surplus:,}"),
    ("short keys", lambda r: f"{len(r.missing_or_short)}"),
    ("members dropped", lambda r: f"{len(r.member_losses)}"),
    ("exited", lambda r: ", ".join(r.exited) or "none"),
    ("view rows replayed", lambda r: ", ".join(map(str, r.view_rows_replayed.values()))),
    ("wiped", lambda r: f"{sum(r.view_wiped_stores.values())}"),
)


def as_json(run: FaultRun) -> dict[str, object]:
    return {
        "leader_moved_s": round(run.leader_moved_s, 3),
        "reads": run.reads,
        "failed_reads": len(run.failed_reads),
        "read_success": run.read_success,
        "delivered": sum(run.delivered.values()),
        "surplus": run.surplus,
        "short_keys": len(run.missing_or_short),
        "member_losses": len(run.member_losses),
        "exited": run.exited,
        "view_rows_replayed": run.view_rows_replayed,
        "view_wiped_stores": run.view_wiped_stores,
    }


def record(args: argparse.Namespace, runs: list[FaultRun]) -> None:
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    command = (
        "`.venv/bin/python bench/broker_faults.py"
        + (f" --runs {args.runs}" if args.runs != 1 else "")
        + (f" --down {args.down:g}" if args.down != 20.0 else "")
        + " --record`"
    )
    rows = "\n".join(
        f"| {i} | " + " | ".join(show(run) for _, show in COLUMNS) + " |"
        for i, run in enumerate(runs, 1)
    )
    entry = (
        f"\n### {now}, Apache Kafka {KAFKA_VERSION}, 3 nodes, broker down {args.down:g} s\n\n"
        f"- Machine: {kafka_machine()}\n- Date: {now}\n"
        f"- Broker: Apache Kafka {KAFKA_VERSION} (goka.localkafka, 3 nodes, KRaft, "
        "replication factor 3, min.insync.replicas 2, same machine)\n"
        f"- Command: {command}\n\n"
        "| run | " + " | ".join(name for name, _ in COLUMNS) + " |\n"
        "|---:|" + "---:|" * len(COLUMNS) + "\n" + rows + "\n"
    )
    add_to_results("broker_faults", entry, intro=__doc__.split("\n\n", 1)[1] + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--down", type=float, default=20.0, help="seconds the broker is down")
    parser.add_argument("--record", action="store_true", help="append to bench/RESULTS.md")
    args = parser.parse_args()
    if args.runs < 1 or args.down <= 0:
        parser.error("--runs must be >= 1 and --down > 0")
    runs = []
    with LocalKafka(brokers=3, server_jvm=True) as kafka, tempfile.TemporaryDirectory() as tmp:
        for i in range(args.runs):
            run = run_broker_faults(kafka, Path(tmp) / f"run-{i}", args.down)
            print(run.describe(), flush=True)
            runs.append(run)
    if args.record:
        record(args, runs)
    print(json.dumps([as_json(run) for run in runs]), flush=True)


if __name__ == "__main__":
    main()
