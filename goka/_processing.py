"""One consumed batch through the commit protocol of DESIGN.md.

1. run the callbacks; table writes go to each partition's write buffer;
2. produce the changelog (last value per key) and wait for it and every emitted message;
3. apply each partition's buffer and its new changelog offset to storage in one transaction;
4. hand back the input offsets to commit (held back by uncompleted ``defer_commit`` calls).

The runner is also the ContextHost of the processor's callbacks.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from goka._host import GraphHost, Headers
from goka._kafka_errors import raise_if_permanent
from goka._partition import PartitionTask
from goka._producer import BatchProducer
from goka.codec import Codec
from goka.context import Context
from goka.errors import CallbackFailed, CodecError, GokaError, ProcessorError
from goka.graph import Callback, GroupGraph
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
    ) -> None:
        super().__init__(graph)
        self.table = graph.table
        self._views = lookups
        self._producer = producer
        self._partitioner = partitioner
        self._partitions = dict(partition_counts)
        self._delivery_timeout = delivery_timeout
        self._current: PartitionTask | None = None
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

    def _completion_failed(self, where: str, error: BaseException) -> None:
        self.fail(error)

    def fail(self, error: BaseException) -> None:
        with self._failure_lock:
            if self.failure is None:
                self.failure = error

    # -- batches -------------------------------------------------------------------------

    def run(
        self, messages: Sequence[Any], tasks: Mapping[int, PartitionTask]
    ) -> list[PartitionTask]:
        """Process ``messages`` and store the results; returns the partitions that changed.

        An undecodable message under the 'fail' policy ends the batch before it: the messages
        before it are stored, and ``pending_error`` is set for the caller to raise after
        committing them.
        """
        touched: dict[int, PartitionTask] = {}
        processed: dict[tuple[PartitionTask, str], int] = {}
        inputs = self._inputs
        for msg in messages:
            error = msg.error()
            if error is not None:
                raise_if_permanent(error, f"consuming the input of group {self.group!r}")
                continue
            partition = msg.partition()
            task = tasks.get(partition)
            topic = msg.topic()
            if task is None or task.state != "running":
                if task is not None:  # fetched before the pause took effect: read it again
                    task.rewind.setdefault(topic, msg.offset())
                continue
            codec, callback, edge = inputs[topic]
            raw = msg.value()
            try:
                value = None if raw is None else codec.decode(raw)
            except CodecError as exc:
                self.pending_error = self._decode_failed(edge, task, msg, codec, exc)
                if self.pending_error is not None:  # stored and committed up to here
                    break
                processed[task, topic] = msg.offset() + 1
                touched[partition] = task
                continue
            self._call(callback, Context(self, task, msg, msg.key() or b""), value, task)
            processed[task, topic] = msg.offset() + 1
            task.batch_messages += 1
            task.batch_bytes += len(raw) if raw is not None else 0
            touched[partition] = task
        self._store(touched.values())
        for (task, topic), offset in processed.items():
            task.next_input[topic] = offset  # stored: from now on it may be committed
        for task in touched.values():  # counted once stored, so stats() stays consistent
            task.messages_in += task.batch_messages
            task.bytes_in += task.batch_bytes
            task.batch_messages = task.batch_bytes = 0
        return list(touched.values())

    def visit(
        self, callback: Callback, meta: Any, keys: Iterable[tuple[PartitionTask, bytes]]
    ) -> int:
        """Run a visitor over ``keys`` and store the results; returns how many were visited."""
        touched: dict[int, PartitionTask] = {}
        visited = 0
        for task, raw_key in keys:
            self._call(callback, Context(self, task, _VISIT_MESSAGE, raw_key), meta, task)
            touched[task.partition] = task
            visited += 1
        self._store(touched.values())
        return visited

    def _call(self, callback: Callback, ctx: Context, value: Any, task: PartitionTask) -> None:
        self._current = task
        try:
            callback(ctx, value)
        except CallbackFailed as exc:
            raise ProcessorError(f"group {self.group!r} failed: {exc}") from self.failure
        except Exception as exc:
            raise ProcessorError(
                f"the callback for {ctx.topic or 'a visit'!r} raised {type(exc).__name__}: "
                f"{exc} (partition {task.partition}, offset {ctx.offset}); the batch is not "
                "committed and is processed again after a restart"
            ) from exc
        finally:
            self._current = None
        if self.failure is not None:
            raise ProcessorError(f"group {self.group!r} failed: {self.failure}") from self.failure

    def _store(self, touched: Iterable[PartitionTask]) -> None:
        tasks = list(touched)
        table = self.table
        if table is not None:
            for task in tasks:
                for raw_key, (_, encoded) in task.buffer.items():
                    self._producer.produce(table, raw_key, encoded, task.partition)
        table_offsets = self._producer.wait(self._delivery_timeout)
        for task in tasks:
            if task.buffer and task.store is not None:  # only tables have buffered writes
                writes = {key: encoded for key, (_, encoded) in task.buffer.items()}
                task.store.apply(writes, table_offsets[task.partition] + 1)
                task.buffer.clear()
