"""Takeover after an owner's SIGKILL: how long until ACTIVE reads of its partitions succeed
again, against the bound of the session timeout plus 2 s, and the rows the new owners
replayed, figures recorded in bench/RESULTS.md (the ``takeover`` section).

The scenario is the end-to-end test's (tests/e2e/test_takeover.py, the code in
tests/support/takeover.py): on a local Apache Kafka (``goka.localkafka``, one KRaft node,
KIP-848 groups with its 6 s session timeout and 0.5 s heartbeat), three click-count
processors with one standby per partition and a router, 8 partitions, a table of 20,000
clicks over 5,000 keys, clicks going on at about 200 a second and every partition's key read
with consistency ACTIVE as fast as it goes; the owner of partition 0 is SIGKILLed.
``--group-protocol classic`` runs the same with the classic protocol (client session timeout
6 s, heartbeat 0.5 s), for comparison.

Per run: the partitions that changed owner, how many went to the member holding their
standby, the seconds until their ACTIVE reads succeeded again (each, and the worst against
the bound), and the rows replayed against the rows of those partitions. The last line printed
is JSON; ``--record`` adds a dated section to bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench._common import add_to_results, kafka_machine  # noqa: E402
from goka.localkafka import KAFKA_VERSION, LocalKafka  # noqa: E402
from tests.support.takeover import TakeoverRun, run_takeover  # noqa: E402

BOUND_S = 2.0
"""The session timeout plus this is the target (issue 15)."""


def row(i: int, run: TakeoverRun) -> str:
    backs = [m.back_after_s for m in run.moved]
    worst = max(backs)
    bound = run.session_timeout_s + BOUND_S
    return (
        f"| {i} | {len(run.moved)} | {sum(m.heir == m.standby for m in run.moved)} | "
        f"{', '.join(f'{b:.2f}' for b in backs)} | {worst:.2f} | "
        f"{'yes' if worst <= bound else 'no'} | "
        f"{sum(m.replayed for m in run.moved):,} of {sum(m.table_rows for m in run.moved):,} |"
    )


def record(args: argparse.Namespace, runs: list[TakeoverRun]) -> None:
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    command = (
        "`.venv/bin/python bench/takeover.py"
        + (f" --runs {args.runs}" if args.runs != 5 else "")
        + (f" --group-protocol {args.group_protocol}" if args.group_protocol != "auto" else "")
        + " --record`"
    )
    group = "KIP-848 group" if args.group_protocol != "classic" else "classic group"
    worst = [max(m.back_after_s for m in run.moved) for run in runs]
    session = runs[0].session_timeout_s
    entry = (
        f"\n### {now}, Apache Kafka {KAFKA_VERSION}, {group}\n\n"
        f"- Machine: {kafka_machine()}\n- Date: {now}\n"
        f"- Broker: Apache Kafka {KAFKA_VERSION} (goka.localkafka, 1 node, KRaft, same "
        f"machine), session timeout {session:g} s, bound {session + BOUND_S:g} s\n"
        f"- Command: {command}\n"
        f"- Worst partition per run: median {statistics.median(worst):.2f} s, "
        f"max {max(worst):.2f} s\n\n"
        "| run | moved | to their standby | ACTIVE back after, s | worst | within bound "
        "| rows replayed |\n|---:|---:|---:|---|---:|---|---:|\n"
        + "\n".join(row(i, run) for i, run in enumerate(runs, 1))
        + "\n"
    )
    add_to_results("takeover", entry, intro=__doc__.split("\n\n", 1)[1] + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument(
        "--group-protocol",
        choices=["auto", "consumer", "classic"],
        default="auto",
        help="of the processors (auto: KIP-848 on this Kafka)",
    )
    parser.add_argument("--record", action="store_true", help="append to bench/RESULTS.md")
    args = parser.parse_args()
    if args.runs < 1:
        parser.error("--runs must be >= 1")
    runs = []
    with LocalKafka(server_jvm=True) as kafka, tempfile.TemporaryDirectory() as tmp:
        for i in range(args.runs):
            run = run_takeover(
                kafka.bootstrap, Path(tmp) / f"run-{i}", "--group-protocol", args.group_protocol
            )
            print(run.describe(), flush=True)
            runs.append(run)
    if args.record:
        record(args, runs)
    print(json.dumps([dataclasses.asdict(run) for run in runs]), flush=True)


if __name__ == "__main__":
    main()
