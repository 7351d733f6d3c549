"""Rebalances that don't stop the world (KIP-848, ``--group-protocol consumer``): three
processors over 16 partitions under continuous input and ACTIVE reads; a fourth joins. The
partitions that stay with their member keep processing (their counts never stand still for
more than a second) and their ACTIVE reads never fail. (Under the classic protocol every
partition is revoked and recovers again: their reads fail while it happens.)"""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from pathlib import Path

import pytest

import goka
from goka import codec
from goka.errors import ReadError
from goka.partitioner import murmur2
from tests.conftest import ProcessGroup
from tests.support.serving import Deployment, wait_until
from viewsvc.client import Client

pytestmark = [
    pytest.mark.broker,
    pytest.mark.slow,
    pytest.mark.kafka_only("KIP-848's consumer group protocol needs Apache Kafka 4.0+"),
]

PARTITIONS = 16
TIMEOUT = 90.0
PROTOCOL = ("--group-protocol", "consumer")


def one_key_per_partition() -> dict[int, str]:
    keys: dict[int, str] = {}
    for i in range(1000):
        keys.setdefault(murmur2(f"user-{i}".encode(), PARTITIONS), f"user-{i}")
        if len(keys) == PARTITIONS:
            return keys
    raise AssertionError("no key for some partition")


class Traffic:
    """Clicks every key every 80 ms, and reads each key's count ACTIVE as fast as it can, a
    thread per key (so that a slow read of one does not hold the others up), recording
    (time, count or the error) per partition."""

    def __init__(self, brokers: str, topic: str, table: str, router: str) -> None:
        self.keys = one_key_per_partition()
        self.reads: dict[int, list[tuple[float, int | None, str]]] = defaultdict(list)
        self._stop = threading.Event()
        self._emitter = goka.Emitter(brokers, topic, codec.String())
        self._client = Client([router], timeout=5.0)
        self._table = table
        self._threads = [threading.Thread(target=self._emit, daemon=True)] + [
            threading.Thread(target=self._read, args=(partition, key), daemon=True)
            for partition, key in self.keys.items()
        ]
        for thread in self._threads:
            thread.start()

    def _emit(self) -> None:
        while not self._stop.wait(0.005):
            for key in self.keys.values():
                self._emitter.emit(key, "click")
                if self._stop.wait(0.005):
                    return

    def _read(self, partition: int, key: str) -> None:
        while not self._stop.wait(0.02):
            now = time.monotonic()
            try:
                result = self._client.get(
                    self._table, key.encode(), consistency="active", timeout=2.0
                )
                count = int(result.value) if result.found else 0
                self.reads[partition].append((now, count, ""))
            except ReadError as exc:
                self.reads[partition].append((now, None, str(exc)))

    def stop(self) -> None:
        if self._stop.is_set():
            return
        self._stop.set()
        for thread in self._threads:
            thread.join(10)
        self._emitter.close()
        self._client.close()


def longest_standstill(reads: list[tuple[float, int | None, str]], since: float) -> float:
    """The longest time the count read did not move, from ``since`` on."""
    longest, last_change, last = 0.0, since, None
    for at, count, _ in reads:
        if at < since or count is None:
            continue
        if count != last:
            longest = max(longest, at - last_change)
            last_change, last = at, count
    return max(longest, reads[-1][0] - last_change)


def test_a_member_joining_leaves_the_partitions_that_stay_running(
    goka_brokers: str, tmp_path: Path
) -> None:
    deployment = Deployment(goka_brokers, ProcessGroup(), tmp_path, partitions=PARTITIONS)
    traffic = None
    try:
        deployment.start_processors(3, *PROTOCOL)
        wait_until(
            lambda: len(deployment.active_owners()) == PARTITIONS, TIMEOUT, "3 members running"
        )
        deployment.start_view_and_router()
        deployment.wait_settled(TIMEOUT)
        router = deployment.nodes["router"].endpoint
        traffic = Traffic(goka_brokers, deployment.topic, deployment.table, router)
        time.sleep(2.0)  # reads and counts flow
        before = deployment.active_owners()
        joined = time.monotonic()
        deployment.start_processors(1, *PROTOCOL)
        deployment.wait_settled(TIMEOUT)
        time.sleep(2.0)  # the partitions that stay go on beside the newcomer's
        traffic.stop()
        after = deployment.active_owners()
        stayed = sorted(p for p in range(PARTITIONS) if before[p] == after[p])
        newcomer = deployment.nodes["processor-3"].endpoint
        assert newcomer in after.values(), f"the fourth member took no partition: {after}"
        assert len(stayed) >= PARTITIONS // 4, f"only {stayed} stayed with their member"
        failed = {
            p: [error for _, count, error in traffic.reads[p] if count is None][:3] for p in stayed
        }
        assert {p: errors for p, errors in failed.items() if errors} == {}
        standstill = {p: longest_standstill(traffic.reads[p], joined) for p in stayed}
        assert max(standstill.values()) <= 1.0, f"counts stood still: {standstill}"
    finally:
        if traffic is not None:
            traffic.stop()
        deployment.close()
