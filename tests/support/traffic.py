"""Continuous clicks and reads against a click-count deployment, recorded per partition, for
the tests of rebalances, takeovers and restarts under load."""

from __future__ import annotations

import collections
import threading
import time
from collections import defaultdict

import goka
from goka import codec
from goka._delivery import DeliveryFuture
from goka.errors import ReadError
from goka.partitioner import murmur2
from viewsvc.client import Client, Consistency

__all__ = ["Read", "Traffic", "longest_standstill", "one_key_per_partition"]

Read = tuple[float, int | None, str]
"""(monotonic time, the count read or None, the error of a failed read)."""


def one_key_per_partition(partitions: int) -> dict[int, str]:
    """partition -> a ``user-<i>`` key that murmur2 puts there."""
    keys: dict[int, str] = {}
    for i in range(100 * partitions):
        keys.setdefault(murmur2(f"user-{i}".encode(), partitions), f"user-{i}")
        if len(keys) == partitions:
            return keys
    raise AssertionError("no key for some partition")


class Traffic:
    """Clicks one key of every partition every 80 ms or so, and reads each key's count with
    ``consistency`` as fast as it can, a thread per key (so that a slow read of one does not
    hold the others up), recording every read per partition; ``stop()`` waits for every
    click's delivery and returns the clicks delivered per key."""

    def __init__(
        self,
        brokers: str,
        topic: str,
        table: str,
        targets: list[str],
        partitions: int,
        consistency: Consistency,
    ) -> None:
        self.keys = one_key_per_partition(partitions)
        self.reads: dict[int, list[Read]] = defaultdict(list)
        self._sent: list[tuple[str, DeliveryFuture]] = []
        self._delivered: collections.Counter[str] | None = None
        self._stop = threading.Event()
        self._emitter = goka.Emitter(brokers, topic, codec.String())
        self._client = Client(targets, timeout=5.0)
        self._table = table
        self._consistency = consistency
        self._threads = [threading.Thread(target=self._emit, daemon=True)] + [
            threading.Thread(target=self._read, args=(partition, key), daemon=True)
            for partition, key in self.keys.items()
        ]
        for thread in self._threads:
            thread.start()

    def _emit(self) -> None:
        while not self._stop.wait(0.005):
            for key in self.keys.values():
                self._sent.append((key, self._emitter.emit(key, "click")))
                if self._stop.wait(0.005):
                    return

    def _read(self, partition: int, key: str) -> None:
        while not self._stop.wait(0.02):
            now = time.monotonic()
            try:
                result = self._client.get(
                    self._table, key.encode(), consistency=self._consistency, timeout=2.0
                )
                count = int(result.value) if result.found else 0
                self.reads[partition].append((now, count, ""))
            except ReadError as exc:
                self.reads[partition].append((now, None, str(exc)))

    def failed(self, partitions: list[int] | None = None) -> dict[int, list[str]]:
        """partition -> the first errors of its failed reads, for partitions with any."""
        chosen = self.keys if partitions is None else partitions
        errors = {p: [e for _, count, e in self.reads[p] if count is None][:3] for p in chosen}
        return {p: e for p, e in errors.items() if e}

    def stop(self) -> collections.Counter[str]:
        """Stops clicking and reading (once; again: the same answer); the clicks delivered
        per key (every one delivered, or the failure is raised)."""
        if self._delivered is not None:
            return self._delivered
        self._stop.set()
        for thread in self._threads:
            thread.join(10)
        self._emitter.close()
        self._client.close()
        delivered: collections.Counter[str] = collections.Counter()
        for key, future in self._sent:
            future.result(timeout=0)
            delivered[key] += 1
        self._delivered = delivered
        return delivered


def longest_standstill(reads: list[Read], since: float) -> float:
    """The longest time the count read did not move, from ``since`` on."""
    longest, last_change, last = 0.0, since, None
    for at, count, _ in reads:
        if at < since or count is None:
            continue
        if count != last:
            longest = max(longest, at - last_change)
            last_change, last = at, count
    return max(longest, reads[-1][0] - last_change)
