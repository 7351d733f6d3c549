"""Processor throughput: click-count with LMDB storage and changelog, on pre-filled input.

    python bench/processor_throughput.py [--brokers B] [--messages 200000] [--keys 10000]

Without ``--brokers`` the dev broker is started. The input topic is filled first (the emit
rate is reported too); the clock then runs from the moment every partition is running until
every message has been processed and stored, so the consumer-group join is not counted. The
last line printed is JSON with ``msgs_per_s``; ``steady_msgs_per_s`` counts from the first
stored batch instead, leaving out the first fetch after the input partitions are resumed.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import goka  # noqa: E402
from bench._common import brokers_for  # noqa: E402
from examples.clickcount import define_clickcount  # noqa: E402
from goka import codec  # noqa: E402


def fill(brokers: str, topic: str, messages: int, keys: int) -> float:
    """Emit the input; returns messages per second."""
    started = time.perf_counter()
    with goka.Emitter(brokers, topic, codec.String()) as emitter:
        for i in range(messages):
            emitter.emit(f"user-{i % keys}", "click")
    return messages / (time.perf_counter() - started)


def run(args: argparse.Namespace, brokers: str) -> dict[str, object]:
    suffix = uuid.uuid4().hex[:8]
    topic, group = f"bench-clicks-{suffix}", f"bench-counter-{suffix}"
    goka.TopicManager(brokers).ensure_stream(topic, args.partitions)
    emit_rate = fill(brokers, topic, args.messages, args.keys)

    with tempfile.TemporaryDirectory(prefix="goka-bench-") as storage:
        processor = goka.Processor(
            brokers,
            define_clickcount(topic, group),
            storage=goka.LMDBStorage(storage),
            batch_size=args.batch_size,
            hot_standby=args.hot_standby,
        )
        errors: list[BaseException] = []

        def process() -> None:
            try:
                processor.run()
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)

        thread = threading.Thread(target=process, daemon=True)
        thread.start()
        deadline = time.monotonic() + args.timeout
        started = first_batch = None
        first_count = 0
        while time.monotonic() < deadline and not errors:
            stats = processor.stats()["partitions"]
            done = sum(s.get("messages_in", 0) for s in stats.values())
            if started is None:
                if len(stats) == args.partitions and all(
                    s["state"] == "running" for s in stats.values()
                ):
                    started = time.perf_counter()
            elif first_batch is None and done:
                first_batch, first_count = time.perf_counter(), done
            if done >= args.messages:
                break
            time.sleep(0.005)
        finished = time.perf_counter()
        elapsed = finished - started if started is not None else float("nan")
        steady = (finished - first_batch) if first_batch is not None else float("nan")
        processed = sum(s["messages_in"] for s in processor.stats()["partitions"].values())
        processor.stop()
        thread.join(60)
        if errors:
            raise errors[0]
        if processed < args.messages:
            raise SystemExit(f"only {processed} of {args.messages} processed in {args.timeout}s")
    with goka.View(brokers, goka.group_table(group), codec.Int64()) as view:
        view.wait_running(args.timeout)
        total = sum(count for _, count in view.items())
    if total != args.messages:  # the stored counts, read back from the changelog
        raise SystemExit(f"the table counts add up to {total}, not {args.messages}")

    return {
        "benchmark": "processor_throughput",
        "messages": args.messages,
        "keys": args.keys,
        "partitions": args.partitions,
        "batch_size": args.batch_size,
        "hot_standby": args.hot_standby,
        "seconds": round(elapsed, 3),
        "msgs_per_s": round(args.messages / elapsed),
        "steady_msgs_per_s": round((args.messages - first_count) / steady),
        "emit_msgs_per_s": round(emit_rate),
        "python": platform.python_version(),
        "machine": platform.machine(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--brokers", help="bootstrap servers (default: start the dev broker)")
    parser.add_argument("--messages", type=int, default=200_000)
    parser.add_argument("--keys", type=int, default=10_000)
    parser.add_argument("--partitions", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=10_000)
    parser.add_argument("--timeout", type=float, default=300.0)
    parser.add_argument(
        "--hot-standby", action="store_true", help="run the processor with hot_standby=True"
    )
    args = parser.parse_args()
    with brokers_for(args.brokers) as brokers:
        result = run(args, brokers)
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
