"""The input offsets a processor committed, as the broker confirmed them.

An offset counts as committed only once the broker acknowledged it: an asynchronous commit
is on its way until librdkafka's commit callback reports it, and one that failed
(REBALANCE_IN_PROGRESS, NOT_COORDINATOR, the coordinator unreachable past the session
timeout) is sent again by the loop's next turn. A revocation commits synchronously whatever
is not confirmed yet, whether or not an asynchronous commit of it is on its way. librdkafka
itself retries a commit while the coordinator is briefly away; what reaches the callback as
a failure is what it gave up on.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping

from confluent_kafka import KafkaError, TopicPartition

__all__ = ["CommitLedger"]

_logger = logging.getLogger("goka.processor")

Partition = tuple[str, int]
"""An input topic and a partition number."""


class CommitLedger:
    """Offsets sent and confirmed per input partition; used from the processor's thread only
    (librdkafka serves the commit callback inside ``poll``/``consume``)."""

    def __init__(self, group: str) -> None:
        self._group = group
        self._confirmed: dict[Partition, int] = {}
        self._sent: dict[Partition, int] = {}
        self.failed = 0
        """Commits (of one partition each) the broker or librdkafka reported as failed."""

    def due(self, wanted: Mapping[Partition, int], *, sync: bool) -> list[TopicPartition]:
        """The offsets of ``wanted`` to commit now: those not confirmed yet and, for an
        asynchronous commit, not already on their way."""
        due = []
        for key, offset in wanted.items():
            if self._confirmed.get(key) == offset:
                continue
            if not sync and self._sent.get(key) == offset:
                continue
            due.append(TopicPartition(key[0], key[1], offset))
        return due

    def sent(self, offsets: Iterable[TopicPartition]) -> None:
        for tp in offsets:
            self._sent[tp.topic, tp.partition] = tp.offset

    def settled(self, error: KafkaError | None, offsets: Iterable[TopicPartition]) -> None:
        """A commit's outcome: ``error`` for the request as a whole, or each offset's own.
        Only the latest offset sent for a partition counts: the outcome of one it sent again
        since (a synchronous commit at revocation, or a failure's retry) is not news."""
        failures = []
        for tp in offsets:
            key = (tp.topic, tp.partition)
            if self._sent.get(key) != tp.offset:
                continue
            del self._sent[key]
            failure = error if error is not None else tp.error
            if failure is not None and failure.code() == KafkaError._NO_OFFSET:
                continue  # nothing to commit
            if failure is None:
                self._confirmed[key] = tp.offset
                continue
            self.failed += 1  # not confirmed: the next turn sends it again
            failures.append(f"{tp.topic}[{tp.partition}]@{tp.offset}: {failure.str()}")
        if failures:
            _logger.warning(
                "group %s: offset commit failed (%s); it is sent again while the partitions "
                "stay assigned, and synchronously when they are revoked",
                self._group,
                "; ".join(failures),
            )

    def confirmed(self, topic: str, partition: int) -> int | None:
        return self._confirmed.get((topic, partition))

    def forget(self, topic: str, partition: int) -> None:
        """The partition was released: a later owner commits it."""
        self._confirmed.pop((topic, partition), None)
        self._sent.pop((topic, partition), None)
