"""One group inside the tester: runs its callbacks and is their Context's host.

Each callback's table writes and emitted messages take effect right after it returns; a
callback that raises (or calls ``ctx.fail``) leaves nothing behind, and its message is never
committed, as with a processor that stopped on it.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from goka._commit_protocol import VisitMessage
from goka._host import GraphHost, Headers
from goka._partition import PartitionTask
from goka.codec import Codec
from goka.context import Context
from goka.errors import CallbackFailed, CodecError, ConfigError, ProcessorError
from goka.graph import Callback, DeadLetter, GroupGraph
from goka.tester._topics import Record

if TYPE_CHECKING:
    from goka.tester._core import Core

__all__ = ["GroupRunner"]

_logger = logging.getLogger("goka.tester")


class GroupRunner(GraphHost):
    def __init__(self, core: Core, graph: GroupGraph, partitions: int) -> None:
        super().__init__(graph)
        self._core = core
        self.dead_letter_topics = {
            str(edge.on_decode_error.topic)
            for edge in graph.inputs
            if isinstance(edge.on_decode_error, DeadLetter)
        }
        table = graph.table
        self.tasks = [
            PartitionTask(p, core.store(table, p) if table is not None else None, state="running")
            for p in range(partitions)
        ]
        self.positions: dict[tuple[str, int], int] = {
            (topic, p): 0 for topic in self._inputs for p in range(partitions)
        }
        """Per input topic and partition, the next offset to process."""
        self._outbox: list[tuple[str, bytes, bytes | None, Headers | None]] = []
        self._failure: BaseException | None = None

    def input_codec(self, topic: str) -> Codec[Any] | None:
        found = self._inputs.get(topic)
        return None if found is None else found[0]

    def is_input(self, topic: str) -> bool:
        return topic in self._inputs

    # -- the GraphHost parts ----------------------------------------------------------------

    def _send(
        self, topic: str, raw_key: bytes, value: bytes | None, headers: Headers | None
    ) -> None:
        self._outbox.append((topic, raw_key, value, headers))

    def _join_raw(self, table: str, partition: int, raw_key: bytes) -> bytes | None:
        return self._core.store(table, partition).get(raw_key)

    def _lookup(self, table: str, codec: Codec[Any], key: str) -> Any:
        count = self._core.topics.count(table)
        if count is None:  # nobody has written the table yet
            return None
        raw_key = key.encode()
        raw = self._core.store(table, self._core.partition_for(raw_key, count)).get(raw_key)
        return None if raw is None else codec.decode(raw)

    def _completion_failed(self, where: str, error: BaseException) -> None:
        self._core.record_failure(
            f"group {self.group!r}: the deferred commit of the message at {where} failed: {error}",
            error,
        )

    def fail(self, error: BaseException) -> None:
        if self._failure is None:
            self._failure = error

    # -- running callbacks ----------------------------------------------------------------

    def process(self, record: Record) -> None:
        """Processes one input record (raises ProcessorError if that fails)."""
        topic, partition, offset = record.topic(), record.partition(), record.offset()
        self.positions[topic, partition] = offset + 1
        task = self.tasks[partition]
        task.next_input[topic] = offset + 1
        codec, callback, edge = self._inputs[topic]
        raw = record.value()
        try:
            value = None if raw is None else codec.decode(raw)
        except CodecError as exc:
            error = self._decode_failed(edge, task, record, codec, exc)
            if error is not None:
                task.defer(topic, offset)  # held back for good: committed stays before it
                raise error from exc
            self._apply(task)  # the dead letter, if any
            return
        self._call(callback, Context(self, task, record, record.key()), value, task, record)
        task.messages_in += 1
        task.bytes_in += len(raw) if raw is not None else 0

    def visit(self, name: str, meta: Any) -> int:
        """Runs the visitor ``name`` over every key of the table; returns how many."""
        callbacks = {edge.name: edge.callback for edge in self.graph.visitors}
        callback = callbacks.get(name)
        if callback is None:
            raise ConfigError(
                f"group {self.group!r} has no visitor {name!r} (declared: {sorted(callbacks)}): "
                f"add goka.visitor({name!r}, callback) to define_group"
            )
        if self.graph.table is None:
            raise ConfigError(
                f"group {self.group!r} has no table to visit: add goka.persist(codec) to "
                "define_group"
            )
        visited = 0
        for task in self.tasks:
            assert task.store is not None  # every task of a group with a table has a store
            for raw_key in [key for key, _ in task.store.items()]:
                self._call(callback, Context(self, task, VisitMessage(), raw_key), meta, task)
                visited += 1
        return visited

    def _call(
        self,
        callback: Callback,
        ctx: Context,
        value: Any,
        task: PartitionTask,
        record: Record | None = None,
    ) -> None:
        self._failure = None
        try:
            callback(ctx, value)
        except Exception as exc:
            self._abort(task, record)
            if isinstance(exc, CallbackFailed) and self._failure is not None:
                raise ProcessorError(f"group {self.group!r} failed: {exc}") from self._failure
            raise ProcessorError(
                f"group {self.group!r}: the callback for {ctx.topic or 'a visit'!r} raised "
                f"{type(exc).__name__}: {exc} (partition {task.partition}, offset {ctx.offset})"
            ) from exc
        if self._failure is not None:  # ctx.fail() whose CallbackFailed the callback caught
            failure = self._failure
            self._abort(task, record)
            raise ProcessorError(
                f"group {self.group!r} failed: ctx.fail() at {ctx.topic or 'a visit'!r} "
                f"partition {task.partition} offset {ctx.offset}: {failure}"
            ) from failure
        self._apply(task)

    def _abort(self, task: PartitionTask, record: Record | None) -> None:
        task.buffer.clear()
        self._outbox.clear()
        if record is not None:  # held back for good: the committed offset stays before it
            task.defer(record.topic(), record.offset())

    def _apply(self, task: PartitionTask) -> None:
        outbox, self._outbox = self._outbox, []
        for topic, raw_key, encoded, headers in outbox:
            self._core.produce(topic, raw_key, encoded, headers)
            task.messages_out += 1
            task.bytes_out += len(raw_key) + (len(encoded) if encoded is not None else 0)
        if task.buffer:
            table = self.graph.table
            assert table is not None  # only groups with a table buffer writes
            writes, task.buffer = task.buffer, {}
            self._core.write_table(table, task.partition, writes)
