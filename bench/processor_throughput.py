"""Processor throughput: click-count with LMDB storage and changelog, on pre-filled input,
next to a hand-written reference loop doing the same work without the library.

    python bench/processor_throughput.py [--brokers B | --kafka] [--messages 1000000]
        [--keys 10000] [--partitions 8] [--batch-size 10000] [--hot-standby] [--runs 1]
        [--reference-defaults] [--lmdb durable|fast] [--guarantee exactly_once] [--record]

The broker: the Tansu dev broker started for the run by default, ``--kafka`` a real Apache
Kafka started for the run (``goka.localkafka``, one KRaft node on this machine), or
``--brokers B`` an external one. The input topic is filled first (the emit rate is reported
too); then, on that same topic and broker, each run measures two readers in turn (the order
alternates from run to run; ``--runs`` > 1 gives medians):

- **processor**: ``goka.Processor`` running click-count (``examples.clickcount``: String
  input, Int64 table) with ``goka.LMDBStorage`` (``durable=True``, the default: each
  transaction's data flushed at commit; ``--lmdb fast``: ``durable=False``, nothing
  flushed), in its own group (its table topic, like every topic here, is created before the
  fill).
- **reference**: a hand-written loop doing the work of the processor's at-least-once
  protocol minus the library: a plain confluent-kafka Consumer in its own group (subscribe,
  range assignment, earliest, manual commit) takes up to ``--batch-size`` messages that are
  there (``consume(n, 0)``, else ``poll(0.1)`` for a first one, as the processor; with the
  processor's ``fetch.wait.max.ms`` and ``fetch.queue.backoff.ms``, or librdkafka's
  defaults with ``--reference-defaults``), counts
  per key in a Python dict, produces each key's count after the batch as decimal text
  (codec.Int64's encoding) to a compacted changelog topic, in the input message's partition,
  with a plain Producer (``enable.idempotence``, ``linger.ms`` 5: the processor's producer
  settings), waits for delivery (``flush``), then commits the batch's input offsets
  (asynchronously, as the processor). No callbacks, Context, codecs or LMDB.

Each reader runs in a thread of its own; this thread polls its progress every 5 ms
(``Processor.stats()``, the loop's counters). Marks: **assigned** (every partition assigned:
the group join is behind), **running** (every partition running: for the processor, after
the recovery of its empty table partitions, each resumed when its own recovery ends, so some
are processed before the others run; for the reference the same moment as assigned) and the
last message stored (its changelog record acknowledged and its offset handed to ``commit``).
``msgs_per_s`` is the messages stored after the running mark over the time from it to the
last one (the throughput once running; before the reference loop was added the clock also
started there but every message was counted, those stored earlier too);
``assigned_msgs_per_s`` is every message over the time from the assigned mark (adds the
start-up: ``running_after_s``, with ``stored_by_running`` messages stored by then);
``steady_msgs_per_s`` counts from the first stored batch, leaving out the first fetch. Both
results are checked: the processor's table and the reference's changelog are read back
through a View and must add up to ``--messages``, and so must the reference's dict.
``cpu_us_per_msg`` is this process's CPU time (all threads, librdkafka's too) from the
assigned mark to the end per message, ``broker_cpu`` the broker's CPU time over that wall
time (a broker started here; 0 with ``--brokers``).

``ratio`` = ``msgs_per_s`` / ``reference_msgs_per_s`` (``assigned_ratio``, ``steady_ratio``
the same for the other rates). Targets: on Kafka (``--kafka``, or ``--brokers``, taken for a
Kafka) ratio >= 1.0: the library at least as fast as the loop one would write by hand; on
the dev broker at least 100,000 msgs/s.

With ``--guarantee exactly_once`` the processor runs exactly-once (one transaction per batch
of up to ``--batch-size`` messages, the commit interval is the time of a batch) and the
reference is the same processor at least once, in a group of its own; the target is a ratio
of at least 0.5, and ``transactions``/``ms_per_transaction`` are reported.

The last line printed is JSON (``msgs_per_s``,
``reference_msgs_per_s``, ``ratio``, ...); with ``--record`` a dated section is added to the
processor_throughput section of bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import functools
import json
import shlex
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition  # noqa: E402

import goka  # noqa: E402
from bench._common import Broker, add_broker_arguments, add_to_results, broker_for, kafka_machine  # noqa: E402
from examples.clickcount import define_clickcount  # noqa: E402
from goka import codec  # noqa: E402
from goka.processor import INPUT_CONSUMER_DEFAULTS  # noqa: E402

RATIO_TARGET = 1.0
"""On Kafka: processor msgs/s at least this multiple of the reference loop's."""
EXACTLY_ONCE_TARGET = 0.5
"""With ``--guarantee exactly_once``: at least this multiple of the at-least-once rate."""
RATE_TARGET = 100_000
"""On the dev broker: processor msgs/s at least this."""
POLL = 0.005
"""Seconds between two looks at a reader's progress."""


def fill(brokers: str, topic: str, messages: int, keys: int) -> float:
    """Emit the input; returns messages per second."""
    started = time.perf_counter()
    with goka.Emitter(brokers, topic, codec.String()) as emitter:
        for i in range(messages):
            emitter.emit(f"user-{i % keys}", "click")
    return messages / (time.perf_counter() - started)


@dataclass(frozen=True)
class Timing:
    """One reader's clock: from the assignment until every message is stored."""

    messages: int
    seconds: float
    """From the assigned mark to the last message stored."""
    running_s: float
    """From the assigned mark to the running mark (every partition running)."""
    running_count: int
    """Messages stored at the running mark."""
    steady_seconds: float
    """From the first stored batch."""
    first_count: int
    """Messages stored by the first batch seen."""
    cpu_s: float
    """This process's CPU seconds over the clock."""
    broker_cpu_s: float

    @property
    def per_s(self) -> float:
        """The messages stored after the running mark, per second from it."""
        return (self.messages - self.running_count) / (self.seconds - self.running_s)

    @property
    def assigned_per_s(self) -> float:
        return self.messages / self.seconds

    @property
    def steady_per_s(self) -> float:
        return (self.messages - self.first_count) / self.steady_seconds

    @property
    def cpu_us_per_msg(self) -> float:
        return 1e6 * self.cpu_s / self.messages

    @property
    def broker_cpu(self) -> float:
        return self.broker_cpu_s / self.seconds


def watch(
    progress: Callable[[], tuple[bool, bool, int]],
    errors: list[BaseException],
    args: argparse.Namespace,
    broker: Broker,
    what: str,
) -> Timing:
    """Polls ``progress()`` (every partition assigned?, every partition running?, messages
    stored) until every message is stored."""
    deadline = time.monotonic() + args.timeout
    started = running_at = first_batch = None
    running_count = first_count = done = 0
    cpu = broker_cpu = 0.0
    while time.monotonic() < deadline and not errors:
        assigned, running, done = progress()
        now = time.perf_counter()
        if started is None and assigned:
            started = now
            cpu, broker_cpu = time.process_time(), broker.cpu_seconds()
        if started is not None:
            if running_at is None and running:
                running_at, running_count = now, done
            if first_batch is None and done:
                first_batch, first_count = now, done
        if done >= args.messages:
            break
        time.sleep(POLL)
    finished = time.perf_counter()
    cpu, broker_cpu = time.process_time() - cpu, broker.cpu_seconds() - broker_cpu
    if errors:
        raise errors[0]
    if started is None or running_at is None or first_batch is None or done < args.messages:
        raise SystemExit(f"{what}: only {done} of {args.messages} stored in {args.timeout}s")
    if running_count >= args.messages or finished <= running_at:
        raise SystemExit(f"{what}: every message was stored before every partition ran")
    return Timing(
        args.messages,
        finished - started,
        running_at - started,
        running_count,
        finished - first_batch,
        first_count,
        cpu,
        broker_cpu,
    )


def in_thread(target: Callable[[], None]) -> tuple[threading.Thread, list[BaseException]]:
    errors: list[BaseException] = []

    def run() -> None:
        try:
            target()
        except BaseException as exc:  # noqa: BLE001 - raised by watch()
            errors.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, errors


def table_total(brokers: str, table: str, args: argparse.Namespace) -> int:
    """The counts stored in ``table``, read back from its topic through a View."""
    with goka.View(brokers, table, codec.Int64()) as view:
        if not view.wait_running(args.timeout):
            raise SystemExit(f"the view of {table} is not running after {args.timeout}s")
        return sum(count for _, count in view.items())


# -- the two readers --------------------------------------------------------------------------


TRANSACTIONS: dict[str, int] = {}
"""Per group, the transactions its exactly-once processor committed."""


def run_processor(
    broker: Broker, topic: str, group: str, args: argparse.Namespace, guarantee: str
) -> Timing:
    with tempfile.TemporaryDirectory(prefix="goka-bench-") as storage:
        processor = goka.Processor(
            broker.bootstrap,
            define_clickcount(topic, group),
            storage=goka.LMDBStorage(storage, durable=args.lmdb == "durable"),
            batch_size=args.batch_size,
            guarantee=guarantee,  # type: ignore[arg-type]  # argparse checked it
            hot_standby=args.hot_standby,
        )

        def progress() -> tuple[bool, bool, int]:
            stats = processor.stats()["partitions"]
            assigned = len(stats) == args.partitions
            running = assigned and all(s["state"] == "running" for s in stats.values())
            return assigned, running, sum(s.get("messages_in", 0) for s in stats.values())

        thread, errors = in_thread(processor.run)
        try:
            timing = watch(progress, errors, args, broker, f"processor ({guarantee})")
        finally:
            processor.stop()
            thread.join(60)
            TRANSACTIONS[group] = processor.stats()["transactions"]
        if errors:
            raise errors[0]
    total = table_total(broker.bootstrap, goka.group_table(group), args)
    if total != args.messages:  # the stored counts, read back from the changelog
        raise SystemExit(f"processor: the table counts add up to {total}, not {args.messages}")
    return timing


class ReferenceLoop:
    """The hand-written loop: consume a batch, count per key in a dict, produce each touched
    key's count to the changelog, flush, commit the input offsets."""

    def __init__(self, brokers: str, topic: str, changelog: str, args: argparse.Namespace):
        self._brokers, self._topic, self._changelog = brokers, topic, changelog
        self._batch_size, self._timeout = args.batch_size, args.timeout
        self._defaults = args.reference_defaults
        self._group = f"bench-reference-{uuid.uuid4().hex[:8]}"
        self._stopping = threading.Event()
        self.counts: dict[bytes, int] = {}
        self.assigned = 0
        self.stored = 0
        """Messages whose count is delivered to the changelog and whose offset is committed
        (asynchronously: handed to the consumer)."""

    def stop(self) -> None:
        self._stopping.set()

    def run(self) -> None:
        failures: list[KafkaError] = []

        def delivered(err: KafkaError | None, msg: Any) -> None:
            if err is not None:
                failures.append(err)

        def assigned(consumer: Consumer, partitions: list[TopicPartition]) -> None:
            consumer.assign(partitions)
            self.assigned = len(partitions)

        consumer = Consumer(
            {
                "bootstrap.servers": self._brokers,
                "group.id": self._group,
                "enable.auto.commit": False,
                "enable.auto.offset.store": False,
                "auto.offset.reset": "earliest",
                "partition.assignment.strategy": "range",
                **({} if self._defaults else INPUT_CONSUMER_DEFAULTS),  # the processor's
            }
        )
        producer = Producer(
            {
                "bootstrap.servers": self._brokers,
                "enable.idempotence": True,
                "linger.ms": 5,
                "on_delivery": delivered,
            }
        )
        topic, changelog, batch_size, counts = (
            self._topic, self._changelog, self._batch_size, self.counts
        )  # fmt: skip
        produce = producer.produce
        try:
            consumer.subscribe([topic], on_assign=assigned)
            while not self._stopping.is_set():
                messages = consumer.consume(batch_size, 0)
                if not messages:
                    first = consumer.poll(0.1)
                    if first is None:
                        continue
                    messages = [first, *consumer.consume(batch_size - 1, 0)]
                touched: dict[bytes, int] = {}
                offsets: dict[int, int] = {}
                consumed = 0
                for msg in messages:
                    error = msg.error()
                    if error is not None:
                        if error.fatal():
                            raise KafkaException(error)
                        continue  # librdkafka recovers from the others
                    key = msg.key() or b""
                    partition: int = msg.partition()  # type: ignore[assignment]  # a message
                    counts[key] = counts.get(key, 0) + 1
                    touched[key] = partition
                    offsets[partition] = msg.offset() + 1  # type: ignore[operator]
                    consumed += 1
                for key, partition in touched.items():
                    while True:
                        try:
                            produce(changelog, b"%d" % counts[key], key, partition=partition)
                            break
                        except BufferError:  # the local queue is full: let it drain
                            producer.poll(0.05)
                left = producer.flush(self._timeout)
                if left or failures:
                    raise SystemExit(
                        f"reference: {left} undelivered, {len(failures)} failed: {failures[:3]}"
                    )
                if offsets:
                    consumer.commit(
                        offsets=[TopicPartition(topic, p, o) for p, o in offsets.items()],
                        asynchronous=True,
                    )
                self.stored += consumed
        finally:
            producer.flush(self._timeout)
            consumer.close()


def run_reference(broker: Broker, topic: str, changelog: str, args: argparse.Namespace) -> Timing:
    loop = ReferenceLoop(broker.bootstrap, topic, changelog, args)
    thread, errors = in_thread(loop.run)
    try:
        timing = watch(
            lambda: (
                loop.assigned == args.partitions,
                loop.assigned == args.partitions,
                loop.stored,
            ),
            errors,
            args,
            broker,
            "reference",
        )
    finally:
        loop.stop()
        thread.join(60)
    if errors:
        raise errors[0]
    counted = sum(loop.counts.values())
    if counted != args.messages or len(loop.counts) != min(args.keys, args.messages):
        raise SystemExit(
            f"reference: the dict holds {len(loop.counts)} keys counting {counted} messages, "
            f"not {args.keys} keys and {args.messages}"
        )
    total = table_total(broker.bootstrap, changelog, args)
    if total != args.messages:
        raise SystemExit(f"reference: the changelog counts add up to {total}")
    return timing


# -- report -----------------------------------------------------------------------------------


REFERENCE = {
    "at_least_once": "the hand-written loop",
    "exactly_once": "the processor with guarantee='at_least_once'",
}


@dataclass(frozen=True)
class Round:
    order: tuple[str, str]
    processor: Timing
    reference: Timing
    transactions: int
    """The transactions of the processor's run (exactly-once)."""

    @property
    def ratio(self) -> float:
        return self.processor.per_s / self.reference.per_s

    @property
    def assigned_ratio(self) -> float:
        return self.processor.assigned_per_s / self.reference.assigned_per_s

    @property
    def steady_ratio(self) -> float:
        return self.processor.steady_per_s / self.reference.steady_per_s


def verdict(broker: Broker, msgs_per_s: float, ratio: float, guarantee: str) -> tuple[str, bool]:
    """The target that applies on ``broker`` and whether it is met."""
    if guarantee == "exactly_once":
        return f"ratio >= {EXACTLY_ONCE_TARGET} (of at-least-once)", ratio >= EXACTLY_ONCE_TARGET
    if broker.kind == "tansu":
        return f"msgs_per_s >= {RATE_TARGET:,} (dev broker)", msgs_per_s >= RATE_TARGET
    return f"ratio >= {RATIO_TARGET:.1f} (Kafka)", ratio >= RATIO_TARGET


def summary(
    args: argparse.Namespace, broker: Broker, emit_rate: float, rounds: list[Round]
) -> dict[str, object]:
    def median(of: Callable[[Round], float]) -> float:
        return statistics.median(of(r) for r in rounds)

    msgs_per_s = median(lambda r: r.processor.per_s)
    ratio = median(lambda r: r.ratio)
    target, met = verdict(broker, msgs_per_s, ratio, args.guarantee)
    transactions = median(lambda r: r.transactions)
    return {
        "benchmark": "processor_throughput",
        "broker": broker.description,
        "guarantee": args.guarantee,
        "reference": REFERENCE[args.guarantee],
        "transactions": round(transactions),
        "ms_per_transaction": round(1000 * median(lambda r: r.processor.seconds) / transactions, 1)
        if transactions
        else None,
        "messages": args.messages,
        "keys": args.keys,
        "partitions": args.partitions,
        "batch_size": args.batch_size,
        "hot_standby": args.hot_standby,
        "lmdb": args.lmdb,
        "reference_consumer": "librdkafka's defaults"
        if args.reference_defaults
        else f"the processor's {INPUT_CONSUMER_DEFAULTS}",
        "runs": len(rounds),
        "msgs_per_s": round(msgs_per_s),
        "reference_msgs_per_s": round(median(lambda r: r.reference.per_s)),
        "ratio": round(ratio, 3),
        "assigned_msgs_per_s": round(median(lambda r: r.processor.assigned_per_s)),
        "reference_assigned_msgs_per_s": round(median(lambda r: r.reference.assigned_per_s)),
        "assigned_ratio": round(median(lambda r: r.assigned_ratio), 3),
        "steady_msgs_per_s": round(median(lambda r: r.processor.steady_per_s)),
        "reference_steady_msgs_per_s": round(median(lambda r: r.reference.steady_per_s)),
        "steady_ratio": round(median(lambda r: r.steady_ratio), 3),
        "seconds": round(median(lambda r: r.processor.seconds), 3),
        "reference_seconds": round(median(lambda r: r.reference.seconds), 3),
        "running_after_s": round(median(lambda r: r.processor.running_s), 3),
        "stored_by_running": round(median(lambda r: r.processor.running_count)),
        "cpu_us_per_msg": round(median(lambda r: r.processor.cpu_us_per_msg), 2),
        "reference_cpu_us_per_msg": round(median(lambda r: r.reference.cpu_us_per_msg), 2),
        "broker_cpu": round(median(lambda r: r.processor.broker_cpu), 2),
        "reference_broker_cpu": round(median(lambda r: r.reference.broker_cpu), 2),
        "emit_msgs_per_s": round(emit_rate),
        "target": target,
        "met": met,
        "every_run": [
            {
                "order": "/".join(r.order),
                "msgs_per_s": round(r.processor.per_s),
                "reference_msgs_per_s": round(r.reference.per_s),
                "ratio": round(r.ratio, 3),
                "assigned_ratio": round(r.assigned_ratio, 3),
                "running_after_s": round(r.processor.running_s, 3),
            }
            for r in rounds
        ],
        "machine": kafka_machine(),
    }


def runs_table(rounds: list[Round]) -> str:
    lines = [
        "| run | first | reader | msgs_per_s | assigned | steady | running after s "
        "| cpu us/msg | broker cpu |",
        "|---:|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for index, r in enumerate(rounds):
        for name, t in (("processor", r.processor), ("reference", r.reference)):
            lines.append(
                f"| {index + 1} | {r.order[0]} | {name} | {t.per_s:,.0f} "
                f"| {t.assigned_per_s:,.0f} | {t.steady_per_s:,.0f} | {t.running_s:.3f} "
                f"| {t.cpu_us_per_msg:.2f} | {t.broker_cpu:.2f} |"
            )
        lines.append(
            f"| {index + 1} | | ratio | {r.ratio:.2f} | {r.assigned_ratio:.2f} "
            f"| {r.steady_ratio:.2f} | | | |"
        )
    return "\n".join(lines)


def record(
    args: argparse.Namespace, broker: Broker, rounds: list[Round], result: dict[str, object]
) -> None:
    started = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    command = "python bench/processor_throughput.py " + shlex.join(sys.argv[1:])
    exactly_once = args.guarantee == "exactly_once"
    reference = "the at-least-once processor" if exactly_once else "the reference loop"
    reader = "exactly-once processor" if exactly_once else "processor"
    transactions = (
        f" ({result['transactions']:,} transactions, one per batch: "
        f"{result['ms_per_transaction']} ms each)"
        if exactly_once
        else ""
    )
    section = (
        f"\n### {started}, {broker.description.split(' (', 1)[0]}, with {reference}\n\n"
        f"- Machine: {result['machine']}\n"
        f"- Date: {started}\n"
        f"- Broker: {broker.description}\n"
        f"- Command: `.venv/bin/{command.strip()}` ({args.messages:,} messages over "
        f"{args.keys:,} keys, {args.partitions} partitions, batch size {args.batch_size:,}"
        f"{', hot standby' if args.hot_standby else ''}, LMDB {args.lmdb}; the reference: "
        + (
            "the same processor at least once, in a group of its own"
            if exactly_once
            else f"the hand-written loop, its consumer with {result['reference_consumer']}"
        )
        + f"; emit {result['emit_msgs_per_s']:,} msgs/s)\n\n"
        f"{runs_table(rounds)}\n\n"
        f"**{reader} {result['msgs_per_s']:,} msgs/s{transactions}, {reference} "
        f"{result['reference_msgs_per_s']:,} msgs/s: ratio {result['ratio']:.2f} (from the "
        f"assignment {result['assigned_ratio']:.2f}, steady {result['steady_ratio']:.2f}); "
        f"target {result['target']}: {'pass' if result['met'] else 'FAIL'}**\n"
    )
    add_to_results("processor_throughput", section)


# -- main -------------------------------------------------------------------------------------


def run(args: argparse.Namespace, broker: Broker) -> tuple[float, list[Round]]:
    suffix = uuid.uuid4().hex[:8]
    topic = f"bench-clicks-{suffix}"
    # every topic exists before the fill, as the input does: a topic created just before it
    # is read can answer a first fetch with an error (its leader not known yet), and the
    # consumer's retry backoff would be counted in the clock
    groups = [f"bench-counter-{suffix}-{i}" for i in range(args.runs)]
    # under exactly-once, the reference is the at-least-once processor, in groups of its own
    reference_groups = [f"bench-reference-{suffix}-{i}" for i in range(args.runs)]
    changelogs = list(map(goka.group_table, reference_groups))
    manager = goka.TopicManager(broker.bootstrap)
    manager.ensure_stream(topic, args.partitions)
    for table in [*map(goka.group_table, groups), *changelogs]:
        manager.ensure_table(table, args.partitions)
    emit_rate = fill(broker.bootstrap, topic, args.messages, args.keys)
    print(f"filled {topic}: {args.messages:,} messages ({emit_rate:,.0f} msgs/s)", flush=True)
    rounds = []
    for index in range(args.runs):
        order = ("processor", "reference") if index % 2 == 0 else ("reference", "processor")
        reference: Callable[[], Timing] = functools.partial(
            run_reference, broker, topic, changelogs[index], args
        )
        if args.guarantee == "exactly_once":
            reference = functools.partial(
                run_processor, broker, topic, reference_groups[index], args, "at_least_once"
            )
        readers: dict[str, Callable[[], Timing]] = {
            "processor": functools.partial(
                run_processor, broker, topic, groups[index], args, args.guarantee
            ),
            "reference": reference,
        }
        timings = {name: readers[name]() for name in order}
        done = Round(order, timings["processor"], timings["reference"], TRANSACTIONS[groups[index]])
        rounds.append(done)
        for name, t in (("processor", done.processor), ("reference", done.reference)):
            print(
                f"run {index + 1} {name:>9}: {t.per_s:>9,.0f} msgs/s (from assigned "
                f"{t.assigned_per_s:,.0f}, steady {t.steady_per_s:,.0f}; running after "
                f"{t.running_s:.3f}s with {t.running_count:,} stored; "
                f"{t.cpu_us_per_msg:.2f} cpu us/msg, broker cpu {t.broker_cpu:.2f})",
                flush=True,
            )
        print(
            f"run {index + 1}     ratio: {done.ratio:.2f} (from assigned "
            f"{done.assigned_ratio:.2f}, steady {done.steady_ratio:.2f})",
            flush=True,
        )
    return emit_rate, rounds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_broker_arguments(parser)
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--keys", type=int, default=10_000)
    parser.add_argument("--partitions", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=10_000)
    parser.add_argument("--timeout", type=float, default=300.0)
    parser.add_argument(
        "--hot-standby", action="store_true", help="run the processor with hot_standby=True"
    )
    parser.add_argument(
        "--runs", type=int, default=1, help="processor and reference this many times each"
    )
    parser.add_argument(
        "--reference-defaults",
        action="store_true",
        help="the reference's consumer with librdkafka's defaults, not the processor's settings",
    )
    parser.add_argument(
        "--lmdb",
        choices=["durable", "fast"],
        default="durable",
        help="the processor's LMDBStorage durability (default durable, as the library's)",
    )
    parser.add_argument(
        "--guarantee",
        choices=["at_least_once", "exactly_once"],
        default="at_least_once",
        help="the processor's guarantee; with exactly_once the reference is the "
        "at-least-once processor (target: half its rate)",
    )
    parser.add_argument("--record", action="store_true", help="append to bench/RESULTS.md")
    args = parser.parse_args()
    if min(args.messages, args.keys, args.partitions, args.batch_size, args.runs) < 1:
        parser.error("--messages, --keys, --partitions, --batch-size and --runs must be >= 1")
    with broker_for(args) as broker:
        print(f"broker: {broker.description} at {broker.bootstrap}", flush=True)
        emit_rate, rounds = run(args, broker)
    result = summary(args, broker, emit_rate, rounds)
    if args.record:
        record(args, broker, rounds, result)
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
