"""Replays table-topic partitions into their local stores, one transaction per partition and batch.

Used by processors to recover a partition before processing it, and by views to recover and
then keep following every partition. The end of a partition is detected with partition-EOF
events (not watermarks, which some brokers report wrongly).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, TopicPartition

from goka.errors import BrokerError
from goka.storage import Storage

__all__ = ["ReadResult", "TableReader"]

_logger = logging.getLogger("goka.table")


@dataclass
class ReadResult:
    caught_up: set[int] = field(default_factory=set)
    """Partitions that reached the end of the table topic in this read."""
    records: dict[int, int] = field(default_factory=dict)
    """Table records read per partition in this read (before coalescing by key)."""


class TableReader:
    def __init__(self, config: dict[str, Any], topic: str) -> None:
        self.topic = topic
        self._consumer = Consumer(
            {
                **config,
                "enable.auto.commit": False,
                "enable.auto.offset.store": False,
                "enable.partition.eof": True,
                "auto.offset.reset": "earliest",
            }
        )
        self._stores: dict[int, Storage] = {}
        self.skipped_records = 0

    @property
    def partitions(self) -> set[int]:
        return set(self._stores)

    def add(self, partition: int, store: Storage) -> None:
        """Start reading ``partition`` from the offset its store has applied."""
        start = store.offset()
        self._stores[partition] = store
        position = OFFSET_BEGINNING if start is None else start
        self._consumer.incremental_assign([TopicPartition(self.topic, partition, position)])

    def remove(self, partition: int) -> None:
        if self._stores.pop(partition, None) is not None:
            self._consumer.incremental_unassign([TopicPartition(self.topic, partition)])

    def read(self, max_records: int, timeout: float) -> ReadResult:
        result = ReadResult()
        if not self._stores:
            return result
        writes: dict[int, dict[bytes, bytes | None]] = {}
        last: dict[int, int] = {}
        messages: list[Any] = self._consumer.consume(max_records, timeout)
        for msg in messages:
            partition = msg.partition()
            error = msg.error()
            if error is not None:
                if error.code() == KafkaError._PARTITION_EOF:
                    result.caught_up.add(partition)
                    continue
                if error.fatal() or not error.retriable():
                    raise BrokerError(
                        f"reading table topic {self.topic!r} partition {partition} failed: "
                        f"{error.str()}"
                    )
                _logger.warning("table %s: transient error %s", self.topic, error.str())
                continue
            if partition not in self._stores:
                continue  # removed meanwhile; its store has been handed back
            key = msg.key()
            if key is None:
                self.skipped_records += 1
                _logger.warning(
                    "table %s partition %d offset %d has no key; ignored",
                    self.topic,
                    partition,
                    msg.offset(),
                )
            else:
                writes.setdefault(partition, {})[key] = msg.value()
            last[partition] = msg.offset()
            result.records[partition] = result.records.get(partition, 0) + 1
        for partition, offset in last.items():
            self._stores[partition].apply(writes.get(partition, {}), offset + 1)
        return result

    def close(self) -> None:
        self._stores.clear()
        self._consumer.close()
