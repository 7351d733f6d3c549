"""The processor: runs a group's callbacks over its share of the input partitions.

Instances of one group share the input partitions through a Kafka consumer group (``range``
assignment, so that partition N of every input lands on the same instance). An assigned
partition first replays the group table from where its local store stopped (input paused),
then processes batches through the commit protocol (see ``_processing``).
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import threading
import uuid
from collections.abc import Iterable, Mapping
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

from goka._config import client_config
from goka._partition import PartitionStats, PartitionTask
from goka._processing import BatchRunner
from goka._producer import BatchProducer
from goka._table_reader import TableReader
from goka.errors import ConfigError, GokaError, ProcessorError, TopicError
from goka.graph import GroupGraph
from goka.partitioner import get_partitioner
from goka.storage import LMDBStorage, StorageFactory
from goka.topics import TopicManager

__all__ = ["Processor"]

_logger = logging.getLogger("goka.processor")


class Processor:
    """Runs the callbacks of a group definition.

    Args:
        brokers: bootstrap servers (``"host:port,..."`` or a list).
        graph: the group definition from :func:`goka.define_group`.
        storage: where table partitions are kept (default: LMDB in a temporary directory
            that is removed when ``run()`` returns, so every start replays the table).
        partitioner: ``"murmur2"`` (default, Java-compatible) or ``"fnv1a"`` (Goka/Sarama);
            decides the partition of emitted messages, and must be the one the producers of
            the inputs use.
        batch_size: messages consumed and committed together (default 10,000).
        poll_timeout: seconds one poll waits for input (default 0.1); bounds how long
            ``stop()`` takes to be noticed.
        delivery_timeout: seconds to wait for a batch's changelog and emitted messages to
            be acknowledged before stopping with an error (default 60).
        replication_factor: for the table topic if it must be created (-1: broker default).
        extra_config: librdkafka settings for every client (e.g. ``session.timeout.ms``).
    """

    def __init__(
        self,
        brokers: str | Iterable[str],
        graph: GroupGraph,
        *,
        storage: StorageFactory | None = None,
        partitioner: str = "murmur2",
        batch_size: int = 10_000,
        poll_timeout: float = 0.1,
        delivery_timeout: float = 60.0,
        replication_factor: int = -1,
        extra_config: Mapping[str, Any] | None = None,
    ) -> None:
        if not isinstance(graph, GroupGraph):
            raise ConfigError(
                f"graph must come from goka.define_group(...), got {type(graph).__name__}"
            )
        if batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
        if poll_timeout <= 0 or delivery_timeout <= 0:
            raise ConfigError("poll_timeout and delivery_timeout must be positive seconds")
        self.graph = graph
        self._config = client_config(brokers, extra_config)
        self._brokers = brokers
        self._extra_config = extra_config
        self._partitioner_name = partitioner
        self._partitioner = get_partitioner(partitioner)
        self._temp_storage: str | None = None
        if storage is None:  # created on first use, removed when run() returns
            self._temp_storage = os.path.join(
                tempfile.gettempdir(), f"goka-{graph.group}-{uuid.uuid4().hex[:12]}"
            )
            storage = LMDBStorage(self._temp_storage)
        self._storage = storage
        self._batch_size = batch_size
        self._poll_timeout = poll_timeout
        self._delivery_timeout = delivery_timeout
        self._replication = replication_factor
        self._stopping = threading.Event()
        self._started = False
        self._lock = threading.Lock()
        self._tasks: dict[int, PartitionTask] = {}
        self._consumer: Consumer | None = None
        self._reader: TableReader | None = None
        self._final_stats: dict[int, PartitionStats] | None = None

    def stop(self) -> None:
        """Ask ``run()`` to finish its batch, commit, leave the group and return. Thread-safe."""
        self._stopping.set()

    def stats(self) -> dict[int, PartitionStats]:
        """Per assigned partition: state, offsets, counters. Thread-safe.

        After ``run()`` returned: the partitions as they were when it stopped.
        """
        if self._final_stats is not None:
            return dict(self._final_stats)
        with self._lock:
            tasks = list(self._tasks.values())
        return {task.partition: task.stats() for task in tasks}

    def run(self) -> None:
        """Process until ``stop()``; raises ProcessorError (with the cause) on failure."""
        if self._started:
            raise ProcessorError("a Processor runs once; create a new one to run again")
        self._started = True
        try:
            self._run()
        except ProcessorError:
            raise
        except GokaError as exc:
            raise ProcessorError(f"group {self.graph.group!r} stopped: {exc}") from exc
        except KafkaException as exc:
            raise ProcessorError(f"group {self.graph.group!r} stopped: {exc}") from exc
        finally:
            if self._temp_storage is not None:
                shutil.rmtree(self._temp_storage, ignore_errors=True)

    def _prepare_topics(self) -> dict[str, int]:
        """Checks inputs are co-partitioned, creates the table; returns output partition counts."""
        manager = TopicManager(
            self._brokers, replication_factor=self._replication, extra_config=self._extra_config
        )
        counts = {edge.topic: manager.partitions(edge.topic) for edge in self.graph.inputs}
        missing = [topic for topic, count in counts.items() if count is None]
        if missing:
            raise TopicError(
                f"input topics {missing} of group {self.graph.group!r} do not exist: create "
                "them first (e.g. TopicManager(brokers).ensure_stream(topic, partitions))"
            )
        if len(set(counts.values())) > 1:
            listing = ", ".join(f"{topic!r} has {count}" for topic, count in counts.items())
            raise TopicError(
                f"the inputs of group {self.graph.group!r} are not co-partitioned: {listing} "
                "partitions; every input (and the table) needs the same partition count"
            )
        partitions = next(iter(counts.values()))
        assert partitions is not None
        if self.graph.table is not None:
            manager.ensure_table(self.graph.table, partitions)
        outputs: dict[str, int] = {}
        for edge in self.graph.outputs:
            count = manager.partitions(edge.topic)
            if count is None:
                raise TopicError(
                    f"output topic {edge.topic!r} of group {self.graph.group!r} does not "
                    "exist: create it first (TopicManager(brokers).ensure_stream)"
                )
            outputs[edge.topic] = count
        return outputs

    def _run(self) -> None:
        outputs = self._prepare_topics()
        group = self.graph.group
        producer = BatchProducer(
            {**self._config, "enable.idempotence": True, "linger.ms": 5}, self.graph.table
        )
        runner = BatchRunner(
            self.graph, producer, self._partitioner, outputs, self._delivery_timeout
        )
        if self.graph.table is not None:
            self._reader = TableReader(
                {**self._config, "group.id": f"{group}-table-reader"}, self.graph.table
            )
        consumer = Consumer(
            {
                **self._config,
                "group.id": group,
                "enable.auto.commit": False,
                "enable.auto.offset.store": False,
                "auto.offset.reset": "earliest",
                "partition.assignment.strategy": "range",
                "on_commit": self._on_commit,
            }
        )
        self._consumer = consumer
        try:
            consumer.subscribe(
                [edge.topic for edge in self.graph.inputs],
                on_assign=self._on_assign,
                on_revoke=self._on_revoke,
                on_lost=self._on_lost,
            )
            while not self._stopping.is_set():
                recovering = self._recover_step()
                timeout = 0.0 if recovering else self._poll_timeout
                messages = consumer.consume(self._batch_size, timeout)
                if not messages:
                    continue
                commits = runner.run(messages, self._tasks)
                if runner.pending_error is not None:
                    if commits:  # the messages before the undecodable one are stored
                        consumer.commit(offsets=commits, asynchronous=False)
                    raise runner.pending_error
                if commits:
                    consumer.commit(offsets=commits, asynchronous=True)
        finally:
            self._shutdown(consumer, producer)

    def _recover_step(self) -> bool:
        """Replays one chunk of recovering table partitions; True while any is recovering."""
        reader = self._reader
        if reader is None or not reader.partitions:
            return False
        result = reader.read(self._batch_size, self._poll_timeout)
        for partition, records in result.records.items():
            task = self._tasks.get(partition)
            if task is not None:
                task.recovered_records += records
        for partition in result.caught_up:
            task = self._tasks.get(partition)
            if task is not None and task.state == "recovering":
                reader.remove(partition)
                self._start_processing(task)
        return bool(reader.partitions)

    def _start_processing(self, task: PartitionTask) -> None:
        task.mark_running()
        _logger.info(
            "group %s partition %d running after replaying %d table records",
            self.graph.group,
            task.partition,
            task.recovered_records,
        )
        assert self._consumer is not None
        inputs = [TopicPartition(edge.topic, task.partition) for edge in self.graph.inputs]
        self._consumer.resume(inputs)
        for topic, offset in task.rewind.items():
            self._consumer.seek(TopicPartition(topic, task.partition, offset))
        task.rewind.clear()

    def _on_assign(self, consumer: Consumer, assigned: list[TopicPartition]) -> None:
        consumer.assign(assigned)
        consumer.pause(assigned)
        partitions = sorted({tp.partition for tp in assigned})
        _logger.info("group %s: assigned partitions %s", self.graph.group, partitions)
        for partition in partitions:
            topics = {tp.topic for tp in assigned if tp.partition == partition}
            if len(topics) != len(self.graph.inputs):
                _logger.warning(
                    "group %s: partition %d assigned for %s only, not every input",
                    self.graph.group,
                    partition,
                    sorted(topics),
                )
            table = self.graph.table
            store = self._storage.open(table, partition) if table is not None else None
            task = PartitionTask(partition, store)
            with self._lock:
                self._tasks[partition] = task
            if self._reader is not None and store is not None:
                self._reader.add(partition, store)
            else:
                self._start_processing(task)

    def _on_revoke(self, consumer: Consumer, revoked: list[TopicPartition]) -> None:
        self._release(consumer, revoked, commit=True)

    def _on_lost(self, consumer: Consumer, lost: list[TopicPartition]) -> None:
        self._release(consumer, lost, commit=False)

    def _release(self, consumer: Consumer, partitions: list[TopicPartition], commit: bool) -> None:
        numbers = sorted({tp.partition for tp in partitions})
        _logger.info(
            "group %s: partitions %s %s",
            self.graph.group,
            numbers,
            "revoked" if commit else "lost",
        )
        tasks = [self._tasks[p] for p in numbers if p in self._tasks]
        if commit:
            offsets = [
                TopicPartition(topic, task.partition, offset)
                for task in tasks
                for topic, offset in task.next_input.items()
            ]
            if offsets:
                try:
                    consumer.commit(offsets=offsets, asynchronous=False)
                except KafkaException as exc:
                    _logger.warning(
                        "group %s: committing revoked partitions failed (%s); their last "
                        "batch will be processed again by the next owner",
                        self.graph.group,
                        exc,
                    )
        for task in tasks:
            if self._reader is not None:
                self._reader.remove(task.partition)
            with self._lock:
                del self._tasks[task.partition]
            if task.store is not None:
                task.store.close()

    def _on_commit(self, error: KafkaError | None, partitions: list[TopicPartition]) -> None:
        if error is not None and error.code() != KafkaError._NO_OFFSET:
            _logger.warning(
                "group %s: offset commit failed: %s; messages since the last successful "
                "commit will be processed again after a rebalance",
                self.graph.group,
                error.str(),
            )

    def _shutdown(self, consumer: Consumer, producer: BatchProducer) -> None:
        final_stats = self.stats()
        try:
            consumer.close()  # revokes (commits) and leaves the group
        except (KafkaException, RuntimeError) as exc:
            _logger.warning("group %s: closing the consumer failed: %s", self.graph.group, exc)
        producer.close(self._delivery_timeout)
        if self._reader is not None:
            self._reader.close()
        with self._lock:
            tasks, self._tasks = list(self._tasks.values()), {}
        for task in tasks:
            if task.store is not None:
                task.store.close()
        self._final_stats = final_stats
