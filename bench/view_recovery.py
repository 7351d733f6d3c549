"""View recovery: rows/s of a view pod recovering a table into LMDB, next to the raw consume rate.

    python -m bench.view_recovery [--brokers B | --kafka] [--rows 1000000] [--partitions 4]
        [--value-bytes 64] [--rounds 3] [--record]

The broker: the Tansu dev broker started for the run by default, ``--kafka`` a real Apache
Kafka started for the run (``goka.localkafka``, one KRaft node on this machine), or
``--brokers B`` an external one; the records and the JSON name it. A fresh compacted table
topic is filled with
``--rows`` distinct keys (``user-0000000``, ...; values of ``--value-bytes`` bytes) by a
plain confluent-kafka producer with librdkafka's ``murmur2_random`` partitioner, goka's
``murmur2`` (the fill time is reported too). Then every round measures, in this process and
on the same topic:

- **raw**: a plain confluent-kafka Consumer (librdkafka defaults, ``enable.partition.eof``)
  assigned every partition from the beginning, taking ``consume(10000, 0)`` batches (or,
  when none is there, ``consume(1, 1.0)``: a full-size wait would add its timeout at the
  end) and counting messages until every partition has sent its EOF event. The clock starts
  before the consumer is created and stops at the last row, like the views' clocks: the EOF
  events come later (they need a fetch that finds nothing; on Tansu 0.5 to 1.5 s later),
  and ``EOF at`` shows when. So the ratio compares the readers, not the EOF latency.
- **pod**: a ``viewsvc.ViewServer`` (what ``python -m viewsvc serve-view`` runs: the
  membership table, a ``goka.View`` with ``goka.LMDBStorage`` in a fresh directory, the
  gRPC server on 127.0.0.1:0 and the announcer) from its creation until its view is
  running and has applied every row. The discovery topic exists beforehand, as it does for
  a pod joining a cluster.
- **view**: ``goka.View(brokers, table, codec.Bytes(), storage=goka.LMDBStorage(dir))`` alone,
  from its creation until it is running and has applied every row.

"Running and every row applied", because on Tansu a view can go running early (see
``wait_recovered``); ``running at`` shows when it said so. In the JSON and the record,
``running / EOF at`` holds both marks.

rows/s = rows / those seconds. The order of the three rotates from round to round (on a
2-core machine whatever runs first after a fill or a cleanup may be favoured); figures are
the medians over ``--rounds``. ``cpu`` is this process's CPU time over the wall time (1.0 =
one core busy), ``broker cpu`` the same for the broker's processes when started here (the
Tansu binary or the Kafka JVM, from /proc/<pid>/stat; 0 with ``--brokers``), and ``cpu
us/row`` this process's CPU time per row: when neither process keeps a core busy the rates
are set by the broker's fetch path, and the CPU per row says how the readers would compare
against a broker that keeps up. ``of raw`` is a mode's rows/s over raw's, ``cpu/row of raw``
its CPU per row over raw's. After each recovery the stores are checked to hold exactly
``--rows`` rows and a sample of keys is read back through the view (which also checks that
its partitioner matches the producer's).

The targets:

- on the dev broker: pod rows/s at least 50% of raw rows/s;
- on Kafka (``--kafka``, or ``--brokers``, taken for a Kafka): pod and view each at least
  90% of raw rows/s, with at most 2x raw's CPU per row.

With ``--record`` a dated section is appended to bench/RESULTS.md. The last line printed is
JSON.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import random
import shlex
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Producer, TopicPartition  # noqa: E402

import goka  # noqa: E402
from bench._common import Broker, add_broker_arguments, add_to_results, broker_for, kafka_machine  # noqa: E402
from discovery.membership import ensure_discovery_topic  # noqa: E402
from goka import codec  # noqa: E402
from viewsvc import NodeConfig, ViewServer  # noqa: E402

TARGET = 0.5
"""On the dev broker: pod rows/s must be at least this share of raw rows/s."""
KAFKA_RATE_TARGET = 0.9
"""On Kafka: pod and view rows/s must each be at least this share of raw rows/s ..."""
KAFKA_CPU_TARGET = 2.0
"""... with at most this multiple of raw's CPU time per row."""
MODES = ("raw", "pod", "view")
SAMPLE = 1000
"""Keys read back through the view after each recovery."""


# -- data -------------------------------------------------------------------------------------


def key_of(i: int) -> bytes:
    return b"user-%07d" % i


def value_of(i: int, size: int) -> bytes:
    return (b"value-%07d-" % i).ljust(size, b"x")[:size]


def fill(brokers: str, table: str, args: argparse.Namespace) -> float:
    """Writes ``--rows`` distinct keys to the table topic; returns the seconds taken."""
    failures: list[str] = []

    def report(err: KafkaError | None, msg: Any) -> None:  # called for failures only
        failures.append(str(err))

    producer = Producer(
        {
            "bootstrap.servers": brokers,
            "partitioner": "murmur2_random",
            "compression.type": "none",
            "linger.ms": 50,
            "batch.num.messages": 100_000,
            "queue.buffering.max.messages": 1_000_000,
            "queue.buffering.max.kbytes": 1 << 20,
            "delivery.report.only.error": True,
            "on_delivery": report,
        }
    )
    started = time.perf_counter()
    produce, poll = producer.produce, producer.poll
    for i in range(args.rows):
        key, value = key_of(i), value_of(i, args.value_bytes)
        while True:
            try:
                produce(table, value, key)
                break
            except BufferError:  # the local queue is full: let it drain
                poll(0.05)
        if not i % 10_000:
            poll(0)
    left = producer.flush(120)
    elapsed = time.perf_counter() - started
    if left or failures:
        raise SystemExit(f"fill: {left} undelivered, {len(failures)} failed: {failures[:3]}")
    return elapsed


# -- the three ways of reading the topic ------------------------------------------------------


class Clock:
    """Wall and CPU time from its creation until ``stop()`` (later checks are not timed)."""

    def __init__(self, broker: Broker) -> None:
        self._broker_cpu = broker.cpu_seconds
        self._wall, self._cpu = time.perf_counter(), time.process_time()
        self._broker = self._broker_cpu()
        self.stopped: tuple[float, float, float] | None = None
        """(wall seconds, CPU seconds, broker CPU seconds) once stopped."""
        self.marked: float | None = None
        """Wall seconds until ``mark()``: a view said it was running, or raw saw every EOF."""

    def mark(self) -> None:
        self.marked = time.perf_counter() - self._wall

    def stop(self) -> tuple[float, float, float]:
        """Stops it unless stopped; returns (wall, CPU, broker CPU) seconds."""
        if self.stopped is None:
            self.stopped = (
                time.perf_counter() - self._wall,
                time.process_time() - self._cpu,
                self._broker_cpu() - self._broker,
            )
        return self.stopped


@dataclass(frozen=True)
class Run:
    mode: str
    rows: int
    seconds: float
    cpu: float
    """This process's CPU seconds over wall seconds."""
    broker_cpu: float
    """The broker's CPU seconds over wall seconds (0 with ``--brokers``)."""
    marked_s: float | None
    """Seconds until the view's state was running, or (raw) every partition had sent EOF."""

    @property
    def per_s(self) -> float:
        return self.rows / self.seconds


def raw_consume(brokers: str, table: str, args: argparse.Namespace, clock: Clock) -> int:
    """Messages read by a plain consumer from the beginning to EOF on every partition. Stops
    the clock at the last of ``--rows`` messages, like the views' clocks; the EOF events come
    later (a fetch finding no more data), which ``clock.mark()`` records."""
    partitions, timeout = args.partitions, args.timeout
    consumer = Consumer(
        {
            "bootstrap.servers": brokers,
            "group.id": f"bench-raw-{uuid.uuid4().hex[:8]}",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
        }
    )
    try:
        consumer.assign([TopicPartition(table, p, OFFSET_BEGINNING) for p in range(partitions)])
        at_end: set[int] = set()
        count = 0
        deadline = time.monotonic() + timeout
        while len(at_end) < partitions:
            if time.monotonic() > deadline:
                raise SystemExit(f"raw: {count} messages, no EOF on all partitions in {timeout}s")
            # what is there now, else wait for one: consume(n, t) alone waits out t unless
            # n messages arrive, which would add up to t to the end of the read
            batch = consumer.consume(num_messages=10_000, timeout=0)
            for msg in batch or consumer.consume(num_messages=1, timeout=1.0):
                error = msg.error()
                if error is None:
                    count += 1
                elif error.code() == KafkaError._PARTITION_EOF:
                    at_end.add(msg.partition())  # type: ignore[arg-type]  # set on EOF events
                else:
                    raise SystemExit(f"raw: {error}")
            if count >= args.rows:
                clock.stop()  # no-op after the first time
        clock.mark()
        return count
    finally:
        consumer.close()


def check_view(view: goka.View[bytes], args: argparse.Namespace, what: str) -> int:
    """The rows the view's stores hold; checks them and a sample of keys read back."""
    held = sum(view.store(p).count() for p in view.partitions)
    if held != args.rows or view.recovered_records != args.rows:
        raise SystemExit(
            f"{what}: stores hold {held} rows after {view.recovered_records} records, "
            f"not {args.rows}"
        )
    rng = random.Random(7)
    for i in (rng.randrange(args.rows) for _ in range(SAMPLE)):
        got = view.get(key_of(i).decode())
        if got != value_of(i, args.value_bytes):
            raise SystemExit(f"{what}: key {key_of(i)!r} reads {got!r}")
    return held


def wait_recovered(
    view: goka.View[bytes], args: argparse.Namespace, clock: Clock, what: str
) -> int:
    """Stops the clock once the view is running and has applied every row; checks it then.

    Both, because on Tansu a view may go running one producer batch per partition early: it
    also counts reaching the high watermark queried at the start as caught up, and Tansu may
    report that watermark one batch short (see goka/_recovery.py)."""
    deadline = time.monotonic() + args.timeout
    if not view.wait_running(args.timeout):
        raise SystemExit(f"{what}: the view is not running after {args.timeout}s")
    clock.mark()
    while view.recovered_records < args.rows:
        if time.monotonic() > deadline:
            raise SystemExit(f"{what}: {view.recovered_records} rows after {args.timeout}s")
        time.sleep(0.002)
    clock.stop()
    return check_view(view, args, what)


def recover_view(brokers: str, table: str, args: argparse.Namespace) -> Callable[[Clock], int]:
    def measured(clock: Clock) -> int:
        with tempfile.TemporaryDirectory(prefix="goka-bench-recovery-") as storage:
            view = goka.View(brokers, table, codec.Bytes(), storage=goka.LMDBStorage(storage))
            try:
                view.start()
                return wait_recovered(view, args, clock, "view")
            finally:
                view.stop()

    return measured


def recover_pod(
    brokers: str, table: str, discovery_topic: str, args: argparse.Namespace
) -> Callable[[Clock], int]:
    def measured(clock: Clock) -> int:
        with tempfile.TemporaryDirectory(prefix="goka-bench-recovery-") as storage:
            node = ViewServer(
                brokers,
                [table],
                NodeConfig(listen="127.0.0.1:0", discovery_topic=discovery_topic, grace=0.0),
                storage_dir=storage,
                partitioner="murmur2",
                value_codec="bytes",
            )
            try:
                node.start()
                return wait_recovered(node.views[0], args, clock, "pod")
            finally:
                node.stop()

    return measured


def timed(mode: str, action: Callable[[Clock], int], broker: Broker) -> Run:
    clock = Clock(broker)
    rows = action(clock)
    wall, cpu, broker_cpu = clock.stop()  # as stopped by the action, if it did
    return Run(mode, rows, wall, cpu / wall, broker_cpu / wall, clock.marked)


# -- report -----------------------------------------------------------------------------------


def medians(runs: list[Run]) -> dict[str, dict[str, float]]:
    rows = {}
    for mode in MODES:
        mine = [r for r in runs if r.mode == mode]
        rows[mode] = {
            "per_s": statistics.median(r.per_s for r in mine),
            "seconds": statistics.median(r.seconds for r in mine),
            "min_per_s": min(r.per_s for r in mine),
            "max_per_s": max(r.per_s for r in mine),
            "cpu": statistics.median(r.cpu for r in mine),
            "cpu_us_per_row": statistics.median(1e6 * r.cpu * r.seconds / r.rows for r in mine),
            "broker_cpu": statistics.median(r.broker_cpu for r in mine),
        }
    for row in rows.values():  # the medians' ratios to raw's
        row["of_raw"] = row["per_s"] / rows["raw"]["per_s"]
        row["cpu_of_raw"] = row["cpu_us_per_row"] / rows["raw"]["cpu_us_per_row"]
    return rows


def runs_table(runs: list[Run]) -> str:
    lines = [
        "| round | mode | rows/s | seconds | running / EOF at | cpu | broker cpu |",
        "|---:|---|---:|---:|---:|---:|---:|",
    ]
    for index, run in enumerate(runs):
        lines.append(
            f"| {index // len(MODES) + 1} | {run.mode} | {run.per_s:,.0f} | {run.seconds:.2f} "
            f"| {'' if run.marked_s is None else f'{run.marked_s:.2f}'} | {run.cpu:.2f} "
            f"| {run.broker_cpu:.2f} |"
        )
    return "\n".join(lines)


def median_table(rows: dict[str, dict[str, float]]) -> str:
    lines = [
        "| mode | rows/s (median) | min-max | seconds | cpu | broker cpu | cpu us/row | of raw "
        "| cpu/row of raw |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for mode, row in rows.items():
        lines.append(
            f"| {mode} | {row['per_s']:,.0f} | {row['min_per_s']:,.0f}-{row['max_per_s']:,.0f} "
            f"| {row['seconds']:.2f} | {row['cpu']:.2f} | {row['broker_cpu']:.2f} "
            f"| {row['cpu_us_per_row']:.2f} | {row['of_raw']:.0%} | {row['cpu_of_raw']:.2f}x |"
        )
    return "\n".join(lines)


def verdict(rows: dict[str, dict[str, float]], broker: Broker) -> tuple[bool, str]:
    """Whether the targets that apply on ``broker`` are met, and a line saying so."""
    raw = rows["raw"]
    if broker.kind == "tansu":
        pod = rows["pod"]
        met = pod["of_raw"] >= TARGET
        return met, (
            f"pod {pod['per_s']:,.0f} rows/s = {pod['of_raw']:.0%} of raw "
            f"{raw['per_s']:,.0f} rows/s (target >= {TARGET:.0%}): "
            f"{'pass' if met else 'FAIL'}; CPU per row raw / pod = {1 / pod['cpu_of_raw']:.2f}"
        )
    parts, met = [], True
    for mode in ("pod", "view"):
        row = rows[mode]
        ok = row["of_raw"] >= KAFKA_RATE_TARGET and row["cpu_of_raw"] <= KAFKA_CPU_TARGET
        met = met and ok
        parts.append(
            f"{mode} {row['per_s']:,.0f} rows/s = {row['of_raw']:.0%} of raw, "
            f"{row['cpu_us_per_row']:.2f} cpu us/row = {row['cpu_of_raw']:.2f}x raw's: "
            f"{'pass' if ok else 'FAIL'}"
        )
    return met, (
        f"raw {raw['per_s']:,.0f} rows/s, {raw['cpu_us_per_row']:.2f} cpu us/row; "
        + "; ".join(parts)
        + f" (targets on Kafka: >= {KAFKA_RATE_TARGET:.0%} of raw rows/s with <= "
        f"{KAFKA_CPU_TARGET:g}x raw's CPU per row)"
    )


_SECTION_INTRO = """\
How fast a view pod recovers a table (`bench/view_recovery.py`): a fresh compacted table
topic filled with distinct keys by a plain confluent-kafka producer (murmur2_random); then,
in turns within each round, **raw** (a plain confluent-kafka consumer from the beginning to
EOF on every partition, counting messages), **pod** (`viewsvc.ViewServer`, what
`viewsvc serve-view` runs: membership, `goka.View` into `LMDBStorage`, gRPC server, announcer;
from its creation until its view is running and has applied every row) and **view**
(`goka.View` alone, same clock). The order rotates from round to round; figures are medians.
`cpu` is the benchmark process's CPU time over wall time (1.00 = one core), `broker cpu` the
same for the broker (named in each entry; until 2026-11-22 always the dev broker, Tansu
0.6.0, memory storage, same machine), `cpu us/row` the benchmark process's CPU time per row,
`cpu/row of raw` that over raw's. Targets: on the dev broker pod rows/s at least 50% of raw
rows/s; on Kafka pod and view each at least 90% of raw rows/s with at most 2x its CPU per row.
"""


def record(
    args: argparse.Namespace, broker: Broker, runs: list[Run], fill_s: float, started: str
) -> None:
    rows = medians(runs)
    _, line = verdict(rows, broker)
    command = "python -m bench.view_recovery " + shlex.join(sys.argv[1:])
    section = (
        f"\n### {started}, {broker.description.split(' (', 1)[0]}\n\n"
        f"- Machine: {kafka_machine()}\n"
        f"- Date: {started}\n"
        f"- Broker: {broker.description}\n"
        f"- Command: `.venv/bin/{command.strip()}` ({args.rows:,} keys of {args.value_bytes}"
        f" bytes, {args.partitions} partitions, {args.rounds} rounds; fill "
        f"{fill_s:.1f} s = {args.rows / fill_s:,.0f} rows/s)\n\n"
        f"{median_table(rows)}\n\n"
        f"**{line}**\n\n"
        f"Every run:\n\n{runs_table(runs)}\n"
    )
    add_to_results("view_recovery", section, _SECTION_INTRO)


# -- main -------------------------------------------------------------------------------------


def run(args: argparse.Namespace, broker: Broker) -> tuple[float, list[Run]]:
    brokers = broker.bootstrap
    suffix = uuid.uuid4().hex[:8]
    table, discovery_topic = f"bench-recovery-{suffix}-table", f"bench-recovery-disc-{suffix}"
    manager = goka.TopicManager(brokers)
    manager.ensure_table(table, args.partitions)
    ensure_discovery_topic(manager, discovery_topic)
    try:
        fill_s = fill(brokers, table, args)
        print(
            f"filled {table}: {args.rows:,} rows of {args.value_bytes} bytes in {fill_s:.1f}s "
            f"({args.rows / fill_s:,.0f} rows/s)",
            flush=True,
        )
        actions: dict[str, Callable[[Clock], int]] = {
            "raw": lambda clock: raw_consume(brokers, table, args, clock),
            "pod": recover_pod(brokers, table, discovery_topic, args),
            "view": recover_view(brokers, table, args),
        }
        runs: list[Run] = []
        for round_ in range(args.rounds):
            shift = round_ % len(MODES)
            order = MODES[shift:] + MODES[:shift]
            done = {}
            for mode in order:
                done[mode] = result = timed(mode, actions[mode], broker)
                if result.rows != args.rows:
                    raise SystemExit(f"{mode}: read {result.rows} rows, not {args.rows}")
                what = "EOF" if mode == "raw" else "running"
                marked = "" if result.marked_s is None else f", {what} at {result.marked_s:.2f}s"
                print(
                    f"round {round_ + 1} {mode:>4}: {result.per_s:>9,.0f} rows/s "
                    f"({result.seconds:.2f}s{marked}, cpu {result.cpu:.2f}, "
                    f"broker cpu {result.broker_cpu:.2f})",
                    flush=True,
                )
            runs.extend(done[mode] for mode in MODES)
    finally:
        if broker.external:  # a shared broker: leave nothing behind
            with contextlib.suppress(Exception):
                manager.delete([table, discovery_topic])
    return fill_s, runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_broker_arguments(parser)
    parser.add_argument("--rows", type=int, default=1_000_000, help="distinct keys")
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--value-bytes", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3, help="medians over this many rounds")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds per recovery")
    parser.add_argument("--record", action="store_true", help="append to bench/RESULTS.md")
    args = parser.parse_args()
    if args.rows < SAMPLE or args.partitions < 1 or args.rounds < 1:
        parser.error(f"--rows >= {SAMPLE}, --partitions >= 1 and --rounds >= 1")
    if args.value_bytes < 14:
        parser.error("--value-bytes must be at least 14")
    started = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    with broker_for(args) as broker:
        print(f"broker: {broker.description} at {broker.bootstrap}", flush=True)
        fill_s, runs = run(args, broker)
    rows = medians(runs)
    print(median_table(rows))
    met, line = verdict(rows, broker)
    print(line)
    if args.record:
        record(args, broker, runs, fill_s, started)
    summary = {
        "benchmark": "view_recovery",
        "broker": broker.description,
        "rows": args.rows,
        "partitions": args.partitions,
        "value_bytes": args.value_bytes,
        "rounds": args.rounds,
        "fill_s": round(fill_s, 3),
        **{f"{mode}_rows_per_s": round(row["per_s"]) for mode, row in rows.items()},
        **{f"{mode}_cpu_us_per_row": round(row["cpu_us_per_row"], 3) for mode, row in rows.items()},
        **{f"{mode}_broker_cpu": round(row["broker_cpu"], 3) for mode, row in rows.items()},
        "pod_vs_raw": round(rows["pod"]["of_raw"], 3),
        "view_vs_raw": round(rows["view"]["of_raw"], 3),
        "pod_cpu_vs_raw": round(rows["pod"]["cpu_of_raw"], 3),
        "view_cpu_vs_raw": round(rows["view"]["cpu_of_raw"], 3),
        "target": (
            f"pod >= {TARGET:.0%} of raw rows/s (dev broker)"
            if broker.kind == "tansu"
            else f"pod and view >= {KAFKA_RATE_TARGET:.0%} of raw rows/s with <= "
            f"{KAFKA_CPU_TARGET:g}x raw's cpu us/row (Kafka)"
        ),
        "met": met,
        "machine": kafka_machine(),
    }
    print(json.dumps(summary), flush=True)


if __name__ == "__main__":
    main()
