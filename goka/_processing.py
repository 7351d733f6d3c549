"""One consumed batch through the commit protocol of DESIGN.md.

1. run the callbacks; table writes go to each partition's write buffer;
2. produce the changelog (last value per key) and wait for it and every emitted message;
3. apply each partition's buffer and its new changelog offset to storage in one transaction;
4. hand back the input offsets to commit.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from confluent_kafka import KafkaError, TopicPartition

from goka._partition import PartitionTask
from goka._producer import BatchProducer, Headers
from goka.codec import Codec
from goka.context import Context
from goka.errors import BrokerError, CodecError, ConfigError, GokaError, ProcessorError
from goka.graph import GroupGraph, InputEdge, OutputEdge
from goka.partitioner import Partitioner

__all__ = ["BatchRunner"]

_logger = logging.getLogger("goka.processor")


class BatchRunner:
    def __init__(
        self,
        graph: GroupGraph,
        producer: BatchProducer,
        partitioner: Partitioner,
        output_partitions: Mapping[str, int],
        delivery_timeout: float,
    ) -> None:
        self.group = graph.group
        self.table = graph.table
        self.table_codec: Codec[Any] | None = graph.persist.codec if graph.persist else None
        self._graph = graph
        self._inputs: dict[str, InputEdge] = {edge.topic: edge for edge in graph.inputs}
        self._outputs: dict[str, OutputEdge] = {edge.topic: edge for edge in graph.outputs}
        self._producer = producer
        self._partitioner = partitioner
        self._output_partitions = dict(output_partitions)
        self._delivery_timeout = delivery_timeout
        self.pending_error: GokaError | None = None

    def emit(self, topic: str, key: str, value: Any, headers: Mapping[str, bytes] | None) -> None:
        edge = self._outputs.get(topic)
        if edge is None:
            raise ConfigError(
                f"topic {topic!r} is not configured for output. Did you specify "
                f"goka.output({topic!r}, codec) when defining group {self.group!r}?"
            )
        if not isinstance(key, str):
            raise ConfigError(f"emit to {topic!r}: key must be str, got {type(key).__name__}")
        raw_key = key.encode()
        encoded = None if value is None else edge.codec.encode(value)
        partition = self._partitioner(raw_key, self._output_partitions[topic])
        header_list: Headers | None = list(headers.items()) if headers else None
        self._producer.produce(topic, raw_key, encoded, partition, header_list)

    def run(
        self, messages: Sequence[Any], tasks: Mapping[int, PartitionTask]
    ) -> list[TopicPartition]:
        """Process ``messages`` and store the results; returns the input offsets to commit.

        An undecodable message ends the batch before it: the messages before it are stored
        and returned for commit, then ProcessorError is raised via ``pending_error``.
        """
        touched: dict[int, PartitionTask] = {}
        processed: dict[tuple[PartitionTask, str], int] = {}
        inputs = self._inputs
        for msg in messages:
            error = msg.error()
            if error is not None:
                self._consumer_error(error)
                continue
            partition = msg.partition()
            task = tasks.get(partition)
            topic = msg.topic()
            if task is None or task.state != "running":
                if task is not None:  # fetched before the pause took effect: read it again
                    task.rewind.setdefault(topic, msg.offset())
                continue
            edge = inputs[topic]
            raw = msg.value()
            try:
                value = None if raw is None else edge.codec.decode(raw)
            except CodecError as exc:
                self.pending_error = ProcessorError(
                    f"cannot decode the message at topic {topic!r} partition {partition} "
                    f"offset {msg.offset()} with codec {edge.codec.name!r}: {exc}. The "
                    "processor stopped; no offset was committed past this message. Fix or "
                    "skip the message, then restart."
                )
                self.pending_error.__cause__ = exc
                break
            try:
                edge.callback(Context(self, task, msg, msg.key() or b""), value)
            except Exception as exc:
                raise ProcessorError(
                    f"the callback for topic {topic!r} raised {type(exc).__name__}: {exc} "
                    f"(partition {partition}, offset {msg.offset()}); the batch is not "
                    "committed and is processed again after a restart"
                ) from exc
            processed[task, topic] = msg.offset() + 1
            task.messages_in += 1
            task.bytes_in += len(raw) if raw is not None else 0
            touched[partition] = task
        return self._store(touched, processed)

    def _store(
        self,
        touched: Mapping[int, PartitionTask],
        processed: Mapping[tuple[PartitionTask, str], int],
    ) -> list[TopicPartition]:
        table = self.table
        if table is not None:
            for task in touched.values():
                for raw_key, (_, encoded) in task.buffer.items():
                    self._producer.produce(table, raw_key, encoded, task.partition)
        table_offsets = self._producer.wait(self._delivery_timeout)
        for partition, task in touched.items():
            if task.buffer and task.store is not None:  # only tables have buffered writes
                writes = {key: encoded for key, (_, encoded) in task.buffer.items()}
                task.store.apply(writes, table_offsets[partition] + 1)
                task.buffer.clear()
        commits = []
        for (task, topic), offset in processed.items():
            task.next_input[topic] = offset  # stored: from now on it may be committed
            commits.append(TopicPartition(topic, task.partition, offset))
        return commits

    def _consumer_error(self, error: KafkaError) -> None:
        if error.fatal() or error.code() in (
            KafkaError.UNKNOWN_TOPIC_OR_PART,
            KafkaError.TOPIC_AUTHORIZATION_FAILED,
            KafkaError.GROUP_AUTHORIZATION_FAILED,
        ):
            raise BrokerError(f"consuming the input of group {self.group!r} failed: {error.str()}")
        _logger.warning("group %s: consumer error: %s", self.group, error.str())
