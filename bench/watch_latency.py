"""Watch latency: from ``Emitter.emit_sync`` of a click to a watcher receiving the change it
makes, at a steady rate, and how many changes a second one watcher can take; figures recorded
in bench/RESULTS.md (the ``watch_latency`` section).

One click-count processor (its own OS process, serving gRPC) over 4 partitions; one watcher
(``Client.watch`` in this process, straight to the processor) on the whole table. Phase 1:
four threads call ``emit_sync`` for fresh keys, paced to ``--rate`` clicks a second in all
for ``--seconds``; the latency of a click is from just before its ``emit_sync`` to the
arrival of its key's first change (p50, p99, max). Phase 2: ``--burst`` clicks of fresh keys
emitted as fast as the emitter goes; the watcher's rate is the changes it received over the
time from the first to the last. Target (issue 16): p99 under 50 ms at 1,000 changes/s.
"""

from __future__ import annotations

import argparse
import datetime
import json
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import goka  # noqa: E402
from bench._common import (  # noqa: E402
    add_broker_arguments,
    add_to_results,
    broker_for,
    kafka_machine,
)
from goka import codec  # noqa: E402
from tests.conftest import ProcessGroup  # noqa: E402
from tests.support.serving import Deployment, wait_until  # noqa: E402
from viewsvc.client import Client  # noqa: E402

TARGET_P99_MS = 50.0
EMITTERS = 4


class Arrivals:
    """When each key's first change arrived."""

    def __init__(self) -> None:
        self.first: dict[bytes, float] = {}
        self.count = 0
        self.times: list[float] = []
        self._lock = threading.Lock()

    def add(self, key: bytes) -> None:
        now = time.monotonic()
        with self._lock:
            self.count += 1
            self.times.append(now)
            self.first.setdefault(key, now)

    def arrived(self, key: bytes) -> float | None:
        with self._lock:
            return self.first.get(key)


def steady(brokers: str, topic: str, rate: int, seconds: float) -> dict[bytes, float]:
    """Clicks of fresh keys by ``EMITTERS`` threads at ``rate`` a second in all; when each
    one's emit_sync was called."""
    sent: dict[bytes, float] = {}
    lock = threading.Lock()
    interval = EMITTERS / rate

    def run(thread: int) -> None:
        with goka.Emitter(brokers, topic, codec.String()) as emitter:
            start = time.monotonic()
            for i in range(int(seconds * rate / EMITTERS)):
                at = start + i * interval
                pause = at - time.monotonic()
                if pause > 0:
                    time.sleep(pause)
                key = f"steady-{thread}-{i}"
                called = time.monotonic()
                emitter.emit_sync(key, "click")
                with lock:
                    sent[key.encode()] = called

    threads = [threading.Thread(target=run, args=(t,)) for t in range(EMITTERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sent


def measure(brokers: str, rate: int, seconds: float, burst: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        deployment = Deployment(brokers, ProcessGroup(), Path(tmp), partitions=4)
        try:
            deployment.start_processors(1)
            wait_until(deployment.settled, 90, "the processor running")
            endpoint = deployment.processors()[0].endpoint
            arrivals = Arrivals()
            with Client([endpoint]) as client:
                stream = client.watch(deployment.table)

                def watch() -> None:
                    for change in stream:
                        arrivals.add(change.key)

                watcher = threading.Thread(target=watch, daemon=True)
                watcher.start()
                with goka.Emitter(brokers, deployment.topic, codec.String()) as emitter:
                    emitter.emit_sync("warm-up", "click")  # the processor's first batch
                wait_until(lambda: arrivals.arrived(b"warm-up") is not None, 60, "warm-up")
                sent = steady(brokers, deployment.topic, rate, seconds)
                wait_until(lambda: all(arrivals.arrived(k) for k in sent), 60, "every click")
                latencies = sorted(
                    (arrivals.arrived(k) or 0.0) - called for k, called in sent.items()
                )
                before = arrivals.count
                with goka.Emitter(brokers, deployment.topic, codec.String()) as emitter:
                    for i in range(burst):
                        emitter.emit(f"burst-{i}", "click")
                wait_until(lambda: arrivals.count - before >= burst, 120, "the burst")
                times = arrivals.times[before:]
                stream.close()
            return {
                "clicks": len(sent),
                "p50_ms": 1000 * statistics.median(latencies),
                "p99_ms": 1000 * latencies[int(len(latencies) * 0.99) - 1],
                "max_ms": 1000 * latencies[-1],
                "burst_changes_per_s": len(times) / max(times[-1] - times[0], 1e-9),
            }
        finally:
            deployment.close()


def record(args: argparse.Namespace, broker: str, result: dict[str, float]) -> None:
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    flag = " --kafka" if args.kafka else ""
    entry = (
        f"\n### {now}, {broker.split(' (')[0]}\n\n"
        f"- Machine: {kafka_machine()}\n- Date: {now}\n- Broker: {broker}\n"
        f"- Command: `.venv/bin/python bench/watch_latency.py{flag} --record`\n\n"
        "| rate, clicks/s | clicks | p50 ms | p99 ms | max ms | p99 < 50 ms | burst: "
        "changes/s per watcher |\n|---:|---:|---:|---:|---:|---|---:|\n"
        f"| {args.rate:,} | {result['clicks']:,} | {result['p50_ms']:.1f} | "
        f"{result['p99_ms']:.1f} | {result['max_ms']:.1f} | "
        f"{'pass' if result['p99_ms'] < TARGET_P99_MS else 'FAIL'} | "
        f"{result['burst_changes_per_s']:,.0f} |\n"
    )
    add_to_results("watch_latency", entry, intro=__doc__.split("\n\n", 1)[1] + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_broker_arguments(parser)
    parser.add_argument("--rate", type=int, default=1000, help="clicks a second (phase 1)")
    parser.add_argument("--seconds", type=float, default=10.0, help="of phase 1")
    parser.add_argument("--burst", type=int, default=50_000, help="clicks of phase 2")
    parser.add_argument("--record", action="store_true", help="append to bench/RESULTS.md")
    args = parser.parse_args()
    if args.rate < EMITTERS or args.seconds <= 0 or args.burst < 2:
        parser.error(f"--rate must be >= {EMITTERS}, --seconds > 0 and --burst >= 2")
    with broker_for(args) as broker:
        result = measure(broker.bootstrap, args.rate, args.seconds, args.burst)
        description = broker.description
    print(json.dumps(result), flush=True)
    if args.record:
        record(args, description, result)


if __name__ == "__main__":
    main()
