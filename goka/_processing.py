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

from confluent_kafka import TopicPartition

from goka._kafka_errors import raise_if_permanent
from goka._partition import PartitionTask
from goka._producer import BatchProducer, Headers
from goka.codec import Codec
from goka.context import Completion, Context
from goka.errors import CallbackFailed, CodecError, ConfigError, GokaError, ProcessorError
from goka.graph import Callback, DeadLetter, GroupGraph, InputEdge, OutputEdge
from goka.partitioner import Partitioner

if TYPE_CHECKING:
    from goka.view import View

__all__ = ["DEAD_LETTER_HEADERS", "BatchRunner", "VisitMessage", "commit_list"]

_logger = logging.getLogger("goka.processor")

DEAD_LETTER_HEADERS = (
    "goka-error",
    "goka-source-topic",
    "goka-source-partition",
    "goka-source-offset",
)
"""Headers added to a dead-lettered message, after the message's own headers."""


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


class BatchRunner:
    def __init__(
        self,
        graph: GroupGraph,
        producer: BatchProducer,
        partitioner: Partitioner,
        partition_counts: Mapping[str, int],
        lookups: Mapping[str, View[Any]],
        delivery_timeout: float,
    ) -> None:
        self.group: str = graph.group
        self.table = graph.table
        self.table_codec: Codec[Any] | None = graph.persist.codec if graph.persist else None
        self._inputs: dict[str, tuple[Codec[Any], Callback, InputEdge | None]] = {
            edge.topic: (edge.codec, edge.callback, edge) for edge in graph.inputs
        }
        if graph.loop is not None and graph.loop_topic is not None:
            self._inputs[graph.loop_topic] = (graph.loop.codec, graph.loop.callback, None)
        self._loop_topic = graph.loop_topic
        self._loop_codec = graph.loop.codec if graph.loop is not None else None
        self._outputs: dict[str, OutputEdge] = {edge.topic: edge for edge in graph.outputs}
        self._joins: dict[str, Codec[Any]] = {edge.table: edge.codec for edge in graph.joins}
        self._lookups = lookups
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

    # -- ContextHost ---------------------------------------------------------------------

    def emit(self, topic: str, key: str, value: Any, headers: Mapping[str, bytes] | None) -> None:
        edge = self._outputs.get(topic)
        if edge is None:
            raise ConfigError(
                f"topic {topic!r} is not configured for output. Did you specify "
                f"goka.output({topic!r}, codec) when defining group {self.group!r}?"
            )
        self._send(topic, key, value, edge.codec, headers)

    def loopback(self, key: str, value: Any, headers: Mapping[str, bytes] | None) -> None:
        if self._loop_topic is None or self._loop_codec is None:
            raise ConfigError(
                f"group {self.group!r} has no loop: add goka.loop(codec, callback) to "
                "define_group to use ctx.loopback()"
            )
        self._send(self._loop_topic, key, value, self._loop_codec, headers)

    def join(self, table: str, partition: int, raw_key: bytes) -> Any:
        codec = self._joins.get(table)
        task = self._current
        if codec is None or task is None:
            raise ConfigError(
                f"table {table!r} is not joined by group {self.group!r}: add "
                f"goka.join({table!r}, codec) to define_group (joined: {sorted(self._joins)})"
            )
        raw = task.join_stores[table].get(raw_key)
        return None if raw is None else codec.decode(raw)

    def lookup(self, table: str, key: str) -> Any:
        view = self._lookups.get(table)
        if view is None:
            raise ConfigError(
                f"table {table!r} is not a lookup of group {self.group!r}: add "
                f"goka.lookup({table!r}, codec) to define_group (lookups: {sorted(self._lookups)})"
            )
        return view.get(key)

    def defer_commit(self, task: PartitionTask, msg: Any) -> Completion:
        topic, offset = msg.topic(), msg.offset()
        if offset < 0:
            raise ConfigError("defer_commit() is for input messages; a visit has no offset")
        task.defer(topic, offset)
        called = threading.Event()

        def done(error: BaseException | None = None) -> None:
            if called.is_set():
                raise GokaError(f"the completion of {topic!r} offset {offset} was already called")
            called.set()
            if error is not None:  # the message stays uncommitted: it is processed again
                self.fail(error)
            else:
                task.complete(topic, offset)

        return done

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
                if not self._decode_failed(edge, task, msg, codec, exc):
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

    def _decode_failed(
        self,
        edge: InputEdge | None,
        task: PartitionTask,
        msg: Any,
        codec: Codec[Any],
        exc: CodecError,
    ) -> bool:
        """Applies the input's decode-error policy; False if the batch must end here."""
        where = f"topic {msg.topic()!r} partition {task.partition} offset {msg.offset()}"
        policy = edge.on_decode_error if edge is not None else "fail"
        if policy == "skip":
            task.skipped += 1
            _logger.warning(
                "group %s skipped undecodable message at %s: %s", self.group, where, exc
            )
            return True
        if isinstance(policy, DeadLetter):
            headers: Headers = list(msg.headers() or [])
            headers += zip(
                DEAD_LETTER_HEADERS,
                (str(exc), msg.topic(), str(task.partition), str(msg.offset())),
                strict=True,
            )
            key = msg.key()
            partition = self._partitioner(key or b"", self._partitions[policy.topic])
            self._producer.produce(policy.topic, key or b"", msg.value(), partition, headers)
            task.dead_lettered += 1
            _logger.warning(
                "group %s sent undecodable message at %s to %s: %s",
                self.group,
                where,
                policy.topic,
                exc,
            )
            return True
        self.pending_error = ProcessorError(
            f"cannot decode the message at {where} with codec {codec.name!r}: {exc}. The "
            "processor stopped; no offset was committed past this message. Fix or skip the "
            "message (on_decode_error='skip' or goka.dead_letter(topic)), then restart."
        )
        self.pending_error.__cause__ = exc
        return False

    def _send(
        self,
        topic: str,
        key: str,
        value: Any,
        codec: Codec[Any],
        headers: Mapping[str, bytes] | None,
    ) -> None:
        if not isinstance(key, str):
            raise ConfigError(f"emit to {topic!r}: key must be str, got {type(key).__name__}")
        raw_key = key.encode()
        encoded = None if value is None else codec.encode(value)
        partition = self._partitioner(raw_key, self._partitions[topic])
        header_list: Headers | None = list(headers.items()) if headers else None
        self._producer.produce(topic, raw_key, encoded, partition, header_list)
        task = self._current
        if task is not None:
            task.messages_out += 1
            task.bytes_out += len(raw_key) + (len(encoded) if encoded is not None else 0)

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


def commit_list(tasks: Iterable[PartitionTask]) -> list[TopicPartition]:
    """The input offsets of ``tasks`` that may be committed now."""
    return [
        TopicPartition(topic, task.partition, offset)
        for task in tasks
        for topic, offset in task.commit_offsets().items()
    ]
