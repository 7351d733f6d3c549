"""The tester's shared state: topics, table stores, codecs, groups, and the run loop."""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from goka._host import Headers
from goka.codec import Bytes, Codec
from goka.errors import ProcessorError
from goka.partitioner import get_partitioner
from goka.storage import MemoryStorage, Storage
from goka.tester._topics import Record, Topics

if TYPE_CHECKING:
    from goka.tester._runner import GroupRunner

__all__ = ["Core"]


class Core:
    def __init__(self, partitions: int, partitioner: str, max_cascade: int) -> None:
        self.topics = Topics(partitions)
        self.partition_for = get_partitioner(partitioner)
        self.max_cascade = max_cascade
        self.groups: dict[str, GroupRunner] = {}
        self.table_codecs: dict[str, Codec[Any]] = {}
        """Per table, the codec of its values: the persist edge's, else one a test gave."""
        self._storage = MemoryStorage()
        self._failure_lock = threading.Lock()
        self._failure: tuple[str, BaseException] | None = None

    # -- records and tables -------------------------------------------------------------

    def produce(
        self,
        topic: str,
        key: bytes,
        value: bytes | None,
        headers: Headers | None = None,
        *,
        partition: int | None = None,
        timestamp_ms: int | None = None,
    ) -> Record:
        """Appends a record; its partition from the partitioner unless given."""
        count = self.topics.ensure(topic)
        if partition is None:
            partition = self.partition_for(key, count)
        if timestamp_ms is None:
            timestamp_ms = time.time_ns() // 1_000_000
        return self.topics.append(topic, partition, key, value, headers, timestamp_ms)

    def store(self, table: str, partition: int) -> Storage:
        return self._storage.open(table, partition)

    def write_table(self, table: str, partition: int, writes: Mapping[bytes, bytes | None]) -> None:
        """Writes the changelog records of ``writes`` (None: a tombstone), then the store."""
        last = None
        for key, value in writes.items():
            last = self.produce(table, key, value, partition=partition)
        if last is not None:
            self.store(table, partition).apply(writes, last.offset() + 1)

    # -- codecs ---------------------------------------------------------------------------

    def input_codec(self, topic: str) -> Codec[Any] | None:
        """The codec a registered group decodes ``topic`` with (the first one registered)."""
        for runner in self.groups.values():
            codec = runner.input_codec(topic)
            if codec is not None:
                return codec
        return None

    def topic_codec(self, topic: str) -> Codec[Any] | None:
        """The codec of what is written to ``topic``: an output, loop, table or dead-letter
        topic of a registered group, else the codec its consumers use."""
        for runner in self.groups.values():
            graph = runner.graph
            for edge in graph.outputs:
                if edge.topic == topic:
                    return edge.codec
            if graph.loop is not None and graph.loop_topic == topic:
                return graph.loop.codec
            if topic in runner.dead_letter_topics:
                return Bytes()
        return self.table_codecs.get(topic) or self.input_codec(topic)

    # -- failures reported outside callbacks ---------------------------------------------

    def record_failure(self, message: str, cause: BaseException) -> None:
        """Remembers a failure (e.g. ``done(error)`` of a deferred commit); the first one is
        raised as ProcessorError by the running or next ``consume``."""
        with self._failure_lock:
            if self._failure is None:
                self._failure = (message, cause)

    def raise_failure(self) -> None:
        with self._failure_lock:
            failure, self._failure = self._failure, None
        if failure is not None:
            message, cause = failure
            raise ProcessorError(message) from cause

    # -- the run loop ---------------------------------------------------------------------

    def drain(self) -> int:
        """Runs every registered group until no record is pending; returns how many records
        were processed. Records go in the order they were written, and one record to the
        groups consuming it in the order they were registered."""
        processed = 0
        while True:
            self.raise_failure()
            step = self._next()
            if step is None:
                return processed
            processed += 1
            if processed > self.max_cascade:
                runner, record = step
                raise ProcessorError(
                    f"more than {self.max_cascade} messages were processed for one call, the "
                    f"last by group {runner.group!r} from topic {record.topic()!r}: the "
                    "groups probably feed each other in a cycle (outputs consumed as inputs, "
                    "or loopbacks that never stop). Break the cycle, or raise "
                    "Tester(max_cascade=...) if that many messages are expected"
                )
            runner, record = step
            runner.process(record)

    def _next(self) -> tuple[GroupRunner, Record] | None:
        best: tuple[GroupRunner, Record] | None = None
        for runner in self.groups.values():
            for (topic, partition), position in runner.positions.items():
                records = self.topics.partition(topic, partition)
                if position < len(records):
                    record = records[position]
                    if best is None or record.seq < best[1].seq:
                        best = (runner, record)
        return best
