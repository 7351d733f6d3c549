"""Consumed batches through the commit protocol of docs/architecture.md.

1. run the callbacks; table writes go to each partition's write buffer;
2. produce the changelog (last value per key); the batch is sealed: its writes wait in
   ``inflight`` (where ``ctx.value()`` still sees them) while the next batch's callbacks run;
3. once every message of the batch (changelog and emits) is acknowledged, apply each
   partition's writes and its new changelog offset to storage in one transaction;
4. hand back the input offsets to commit (held back by uncompleted ``defer_commit`` calls);
   the processor commits them (``Processor._commit``: asynchronously while running,
   synchronously before partitions are released and on stop).

Waiting for the acknowledgements of one batch while the next is processed keeps the broker's
round trip (and the producer's linger) off the processing thread. A sealed batch is settled
(steps 3 and 4) when the next one is sent, when the input has nothing more, before partitions
are released, and before a visit or a decode failure returns. Any failure before that leaves
its offsets uncommitted, as a failure of a single batch did.

With ``guarantee="exactly_once"`` a batch is a Kafka transaction instead (see
``goka._transactions``): steps 2 and 4 are one commit of the changelog, the emits and the
input offsets, done before the next batch begins; step 3 follows it.

The runner is also the ContextHost of the processor's callbacks.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from confluent_kafka import TopicPartition

from goka._crash_points import CrashPoints
from goka._host import GraphHost, Headers
from goka._kafka_errors import raise_if_permanent
from goka._partition import PartitionTask
from goka._producer import BatchProducer, Deliveries, DeliveryTimedOut
from goka._stall import MembershipInDoubt, StallGuard
from goka._transactions import TransactionalProducer
from goka.changes import consecutive_changes
from goka.codec import Codec
from goka.context import Completion, Context
from goka.errors import CallbackFailed, CodecError, ConfigError, GokaError, ProcessorError
from goka.graph import Callback, GroupGraph, InputEdge
from goka.partitioner import Partitioner

if TYPE_CHECKING:
    from goka.view import View

__all__ = ["BatchRunner", "VisitMessage"]

_logger = logging.getLogger("goka.processor")


class VisitMessage:
    """Stands in for the message in a visitor's Context: no topic, offset -1, no headers."""

    __slots__ = ()

    def topic(self) -> str:
        return ""

    def offset(self) -> int:
        return -1

    def timestamp(self) -> tuple[int, int]:
        return (0, -1)

    def headers(self) -> None:
        return None


_VISIT_MESSAGE = VisitMessage()


class BatchRunner(GraphHost):
    def __init__(
        self,
        graph: GroupGraph,
        producer: BatchProducer,
        partitioner: Partitioner,
        partition_counts: Mapping[str, int],
        lookups: Mapping[str, View[Any]],
        delivery_timeout: float,
        guard: StallGuard,
        cache_entries: int = 0,
        crash_points: CrashPoints | None = None,
        *,
        metadata: Any,
    ) -> None:
        super().__init__(graph)
        self.table = graph.table
        self.metadata = metadata
        """The input consumer: its ``list_topics`` confirms a consumer error naming an
        unknown topic (see ``raise_if_permanent``), its group metadata goes with the input
        offsets of a transaction."""
        self.transaction: TransactionalProducer | None = (
            producer if isinstance(producer, TransactionalProducer) else None
        )
        """Exactly-once: each batch is one transaction (see ``goka._transactions``)."""
        self._views = lookups
        self._producer = producer
        self._partitioner = partitioner
        self._partitions = dict(partition_counts)
        self._delivery_timeout = delivery_timeout
        self._cache_entries = cache_entries
        self._cache_limit = cache_entries
        """Cached values kept per partition: ``cache_entries`` shared by the assigned ones."""
        self.guard = guard
        self._crash = crash_points or CrashPoints({})
        self._sealed: _SealedBatch | None = None
        self._filling: dict[int, PartitionTask] = {}
        """The partitions of the batch being filled (whose writes are in their ``buffer``)."""
        self._current: PartitionTask | None = None
        self.changelog_headers: Headers | None = None
        """Headers of every changelog record: the writer and its assignment generation."""
        self.dropped = 0
        """Batches given up before they were stored (see ``drop``)."""
        self._failure_lock = threading.Lock()
        self.failure: BaseException | None = None
        """Set by ctx.fail() or a completion called with an error; stops the processor."""
        self.pending_error: GokaError | None = None
        """An undecodable message under the 'fail' policy ended the last batch before it."""

    # -- the GraphHost parts -------------------------------------------------------------

    def _send(
        self, topic: str, raw_key: bytes, value: bytes | None, headers: Headers | None
    ) -> None:
        partition = self._partitioner(raw_key, self._partitions[topic])
        self.guard.tick()
        self._producer.produce(topic, raw_key, value, partition, headers)
        task = self._current
        if task is not None:
            task.messages_out += 1
            task.bytes_out += len(raw_key) + (len(value) if value is not None else 0)

    def _join_raw(self, table: str, partition: int, raw_key: bytes) -> bytes | None:
        task = self._current
        if task is None or task.partition != partition:
            raise GokaError("ctx.join() was called outside of its callback")
        return task.join_stores[table].get(raw_key)

    def _lookup(self, table: str, codec: Codec[Any], key: str) -> Any:
        return self._views[table].get(key)

    def defer_commit(self, task: PartitionTask, msg: Any) -> Completion:
        if self.transaction is not None:
            raise ConfigError(
                "ctx.defer_commit() is not available with guarantee='exactly_once': a "
                "batch's input offsets are committed in its transaction, which cannot wait "
                "for work outside Kafka; use at_least_once for deferred completions"
            )
        return super().defer_commit(task, msg)

    def _completion_failed(self, where: str, error: BaseException) -> None:
        self.fail(error)

    def fail(self, error: BaseException) -> None:
        with self._failure_lock:
            if self.failure is None:
                self.failure = error

    # -- batches -------------------------------------------------------------------------

    @property
    def sealed(self) -> bool:
        """A batch's messages are out, waiting for acknowledgement (see ``settle``)."""
        return self._sealed is not None

    def run(
        self, messages: Sequence[Any], tasks: Mapping[int, PartitionTask]
    ) -> list[PartitionTask]:
        """Process ``messages`` and send their results; returns the partitions whose batch
        was stored meanwhile (the previous one's).

        The batch is stored (its buffered writes applied, its offsets ready to commit) once
        acknowledged, by the next call or ``settle()``: its changelog is in flight while
        the next batch's callbacks run.

        An undecodable message under the 'fail' policy ends the batch before it: the messages
        before it are stored, and ``pending_error`` is set for the caller to raise after
        committing them.
        """
        self._cache_limit = self._cache_entries // max(1, len(tasks))
        if self.transaction is not None:
            self.transaction.begin()
        touched: dict[int, PartitionTask] = {}
        self._filling = touched
        processed: dict[tuple[PartitionTask, str], int] = {}
        inputs = self._inputs
        # Consecutive messages of one partition and topic (librdkafka hands them out by
        # fetched chunk) are a run: they share its lookups and counters. This loop is the
        # hot path of the processor.
        task: PartitionTask | None = None
        run_partition, run_topic = -1, ""
        codec: Codec[Any]
        callback: Callback
        edge: InputEdge | None
        next_offset = count = size = 0
        ctx: Context
        try:
            for msg in messages:
                error = msg.error()
                if error is not None:
                    raise_if_permanent(
                        error, f"consuming the input of group {self.group!r}", msg, self.metadata
                    )
                    continue
                partition = msg.partition()
                topic = msg.topic()
                if partition != run_partition or topic != run_topic:
                    if task is not None:
                        _end_run(processed, task, run_topic, next_offset, count, size)
                    run_partition, run_topic = partition, topic
                    next_offset = count = size = 0
                    task = tasks.get(partition)
                    if task is not None and task.state != "running":
                        # fetched before the pause took effect: read it again
                        task.rewind.setdefault(topic, msg.offset())
                        task = None
                    if task is not None:
                        task.start.setdefault(topic, msg.offset())
                        self.guard.tick()
                        codec, callback, edge = inputs[topic]
                        touched[partition] = task
                        self._current = task
                        ctx = Context(self, task, msg, b"")
                if task is None:
                    continue
                raw = msg.value()
                try:
                    value = None if raw is None else codec.decode(raw)
                except CodecError as exc:
                    self.pending_error = self._decode_failed(edge, task, msg, codec, exc)
                    if self.pending_error is not None:  # stored and committed up to here
                        break
                    next_offset = msg.offset() + 1
                    continue
                # the run's Context moves on to this message: a Context is only valid
                # during its callback (as Kafka Streams reuses its ProcessorContext); then
                # _call()'s body, inlined on this hot path (self._current is the run's task)
                ctx._msg, ctx._raw_key = msg, msg.key() or b""
                try:
                    callback(ctx, value)
                except (CallbackFailed, MembershipInDoubt) as exc:
                    raise self._failed(exc) from self.failure
                except Exception as exc:
                    raise self._callback_error(exc, ctx, task) from exc
                if self.failure is not None:
                    raise self._failed(self.failure) from self.failure
                next_offset = msg.offset() + 1
                count += 1
                if raw is not None:
                    size += len(raw)
            if task is not None:
                _end_run(processed, task, run_topic, next_offset, count, size)
        finally:
            self._current = None
        self._crash.reached("after_callbacks")
        stored = self._send_batch(touched.values(), processed)
        if self.pending_error is not None:
            stored += self.settle()
        return stored

    def visit(
        self, callback: Callback, meta: Any, keys: Iterable[tuple[PartitionTask, bytes]]
    ) -> int:
        """Run a visitor over ``keys`` and store the results; returns how many were visited."""
        touched: dict[int, PartitionTask] = {}
        self._filling = touched
        if self.transaction is not None:
            self.transaction.begin()
        visited = 0
        for task, raw_key in keys:
            self._call(callback, Context(self, task, _VISIT_MESSAGE, raw_key), meta, task)
            touched[task.partition] = task
            visited += 1
        self._send_batch(touched.values(), {})
        self.settle()  # a visit's progress counts stored keys
        return visited

    def _call(self, callback: Callback, ctx: Context, value: Any, task: PartitionTask) -> None:
        self._current = task
        try:
            callback(ctx, value)
        except (CallbackFailed, MembershipInDoubt) as exc:
            raise self._failed(exc) from self.failure
        except Exception as exc:
            raise self._callback_error(exc, ctx, task) from exc
        finally:
            self._current = None
        if self.failure is not None:
            raise self._failed(self.failure) from self.failure

    def _callback_error(self, exc: Exception, ctx: Context, task: PartitionTask) -> ProcessorError:
        return ProcessorError(
            f"the callback for {ctx.topic or 'a visit'!r} raised {type(exc).__name__}: "
            f"{exc} (partition {task.partition}, offset {ctx.offset}); the batch is not "
            "committed and is processed again after a restart"
        )

    def _failed(self, reason: BaseException) -> BaseException:
        """Stops the processor after ctx.fail() or a completion's error (the ``failure``);
        a stall guard's doubt passes through the callback to the processor, which handles it."""
        if isinstance(reason, MembershipInDoubt):
            return reason
        return ProcessorError(f"group {self.group!r} failed: {reason}")

    def _send_batch(
        self, touched: Iterable[PartitionTask], processed: dict[tuple[PartitionTask, str], int]
    ) -> list[PartitionTask]:
        """Send the batch's changelog, store the previous batch, and seal this one; returns
        the partitions of the previous batch."""
        tasks = list(touched)
        table = self.table
        if table is not None and tasks:
            self.guard.tick()
            headers = self.changelog_headers
            for task in tasks:
                self._producer.produce_changelog(
                    table, task.partition, task.buffer.items(), headers
                )
            self._crash.reached("after_changelog_produced")
        deliveries = self._producer.seal()
        stored = self.settle()  # acknowledged meanwhile, unless this batch was quick
        counts = []
        for task in tasks:
            task.inflight, task.buffer = task.buffer, task.inflight
            counts.append((task, task.batch_messages, task.batch_bytes))
            task.batch_messages = task.batch_bytes = 0
        self._sealed = _SealedBatch(deliveries, counts, processed)
        self._filling = {}
        if self.transaction is not None:  # committed now: the next batch is the next one
            offsets = [
                TopicPartition(topic, task.partition, offset)
                for (task, topic), offset in processed.items()
            ]
            deadline = time.monotonic() + self._delivery_timeout
            self.transaction.commit(offsets, self.metadata.consumer_group_metadata(), deadline)
            self._crash.reached("after_commit")
            stored += self.settle()
        return stored

    def settle(self) -> list[PartitionTask]:
        """Wait for the sealed batch's acknowledgements, then store it: apply each of its
        partitions' writes and new changelog offset to storage in one transaction, and make
        its input offsets committable. Returns its partitions."""
        batch = self._sealed
        if batch is None:
            self._producer.serve()
            return []
        try:
            table_offsets = self._producer.wait(batch.deliveries, self._delivery_timeout)
        except DeliveryTimedOut:
            raise  # still sealed: drop() gives it up
        except BaseException:
            self._sealed = None
            raise
        self._sealed = None
        self._crash.reached("after_delivery")
        for task, _, _ in batch.counts:
            if task.inflight and task.store is not None:  # only tables have buffered writes
                last = table_offsets[task.partition]
                if task.feed is None:
                    task.store.apply(task.inflight, last + 1)
                else:
                    first = batch.deliveries.table_first.get(task.partition)
                    changes = consecutive_changes(task.partition, task.inflight, first, last)
                    task.feed.apply(task.store, task.inflight, last + 1, changes)
            task.stored(self._cache_limit)
        for (task, topic), offset in batch.processed.items():
            task.next_input[topic] = offset  # stored: from now on it may be committed
        for task, messages, size in batch.counts:  # counted once stored: stats() agree
            task.messages_in += messages
            task.bytes_in += size
        self._crash.reached("after_store")
        return [task for task, _, _ in batch.counts]

    def drop(self) -> list[PartitionTask]:
        """Give up the sealed batch and the one being filled, and return their partitions:
        what was not sent is purged, their writes and the values cached since are discarded,
        and nothing of them is stored or committed. Processing resumes at each partition's
        ``resume_offsets()``, where the caller seeks (see ``goka._stall``)."""
        self._producer.purge_unsent()
        self._producer.seal()  # what the dropped batches produced is counted no more
        tasks = dict(self._filling)
        if self._sealed is not None:
            tasks.update((task.partition, task) for task, _, _ in self._sealed.counts)
        self._sealed, self._filling = None, {}
        for task in tasks.values():
            task.buffer, task.inflight = {}, {}
            task.batch_messages = task.batch_bytes = 0
            if task.cache is not None:
                task.cache.clear()
        self.dropped += 1
        return list(tasks.values())


def _end_run(
    processed: dict[tuple[PartitionTask, str], int],
    task: PartitionTask,
    topic: str,
    next_offset: int,
    count: int,
    size: int,
) -> None:
    """Account for a run of ``task``'s messages of ``topic``: ``count`` processed, of
    ``size`` bytes, up to ``next_offset`` (0: none processed)."""
    if next_offset:
        processed[task, topic] = next_offset
        task.batch_messages += count
        task.batch_bytes += size


@dataclass(frozen=True)
class _SealedBatch:
    """A batch whose messages are sent and whose writes wait in its partitions' ``inflight``."""

    deliveries: Deliveries
    counts: list[tuple[PartitionTask, int, int]]
    """Each partition of the batch, with the messages and bytes it processed."""
    processed: dict[tuple[PartitionTask, str], int]
    """Per partition and input topic, the offset after the batch's last message."""
