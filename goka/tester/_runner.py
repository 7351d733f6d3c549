"""One group inside the tester: runs its callbacks and is their Context's host.

Each callback's table writes and emitted messages take effect right after it returns; a
callback that raises (or calls ``ctx.fail``) leaves nothing behind, and its message is never
committed, as with a processor that stopped on it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from goka._partition import PartitionTask
from goka._processing import DEAD_LETTER_HEADERS, VisitMessage
from goka.codec import Codec
from goka.context import Completion, Context
from goka.errors import CallbackFailed, CodecError, ConfigError, GokaError, ProcessorError
from goka.graph import Callback, DeadLetter, GroupGraph, InputEdge, OutputEdge
from goka.tester._topics import Headers, Record

if TYPE_CHECKING:
    from goka.tester._core import Core

__all__ = ["GroupRunner"]

_logger = logging.getLogger("goka.tester")


class GroupRunner:
    def __init__(self, core: Core, graph: GroupGraph, partitions: int) -> None:
        self.group: str = graph.group
        self.graph = graph
        self.table_codec: Codec[Any] | None = graph.persist.codec if graph.persist else None
        self._core = core
        self._inputs: dict[str, tuple[Codec[Any], Callback, InputEdge | None]] = {
            edge.topic: (edge.codec, edge.callback, edge) for edge in graph.inputs
        }
        if graph.loop is not None and graph.loop_topic is not None:
            self._inputs[graph.loop_topic] = (graph.loop.codec, graph.loop.callback, None)
        self._outputs: dict[str, OutputEdge] = {edge.topic: edge for edge in graph.outputs}
        self._joins = {str(edge.table): edge.codec for edge in graph.joins}
        self._lookups = {str(edge.table): edge.codec for edge in graph.lookups}
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

    # -- ContextHost ----------------------------------------------------------------------

    def emit(self, topic: str, key: str, value: Any, headers: Mapping[str, bytes] | None) -> None:
        edge = self._outputs.get(topic)
        if edge is None:
            raise ConfigError(
                f"topic {topic!r} is not configured for output. Did you specify "
                f"goka.output({topic!r}, codec) when defining group {self.group!r}?"
            )
        self._send(topic, key, value, edge.codec, headers)

    def loopback(self, key: str, value: Any, headers: Mapping[str, bytes] | None) -> None:
        graph = self.graph
        if graph.loop is None or graph.loop_topic is None:
            raise ConfigError(
                f"group {self.group!r} has no loop: add goka.loop(codec, callback) to "
                "define_group to use ctx.loopback()"
            )
        self._send(graph.loop_topic, key, value, graph.loop.codec, headers)

    def join(self, table: str, partition: int, raw_key: bytes) -> Any:
        codec = self._joins.get(table)
        if codec is None:
            raise ConfigError(
                f"table {table!r} is not joined by group {self.group!r}: add "
                f"goka.join({table!r}, codec) to define_group (joined: {sorted(self._joins)})"
            )
        raw = self._core.store(table, partition).get(raw_key)
        return None if raw is None else codec.decode(raw)

    def lookup(self, table: str, key: str) -> Any:
        codec = self._lookups.get(table)
        if codec is None:
            raise ConfigError(
                f"table {table!r} is not a lookup of group {self.group!r}: add "
                f"goka.lookup({table!r}, codec) to define_group (lookups: {sorted(self._lookups)})"
            )
        count = self._core.topics.count(table)
        if count is None:  # nobody has written the table yet
            return None
        raw_key = key.encode()
        raw = self._core.store(table, self._core.partition_for(raw_key, count)).get(raw_key)
        return None if raw is None else codec.decode(raw)

    def defer_commit(self, task: PartitionTask, msg: Any) -> Completion:
        topic, offset = msg.topic(), msg.offset()
        if offset < 0:
            raise ConfigError("defer_commit() is for input messages; a visit has no offset")
        task.defer(topic, offset)
        lock = threading.Lock()
        called = False
        where = f"topic {topic!r} partition {task.partition} offset {offset}"

        def done(error: BaseException | None = None) -> None:
            nonlocal called
            with lock:
                if called:
                    raise GokaError(f"the completion of the message at {where} was already called")
                called = True
            if error is not None:  # never completed: nothing is committed past this message
                self._core.record_failure(
                    f"group {self.group!r}: the deferred commit of the message at {where} "
                    f"failed: {error}",
                    error,
                )
                return
            task.complete(topic, offset)

        return done

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
            self._decode_failed(edge, task, record, codec, exc)
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
            writes = {key: encoded for key, (_, encoded) in task.buffer.items()}
            task.buffer.clear()
            self._core.write_table(table, task.partition, writes)

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
        encoded = None if value is None else codec.encode(value)
        self._outbox.append((topic, key.encode(), encoded, header_list(headers)))

    def _decode_failed(
        self,
        edge: InputEdge | None,
        task: PartitionTask,
        record: Record,
        codec: Codec[Any],
        exc: CodecError,
    ) -> None:
        topic, offset = record.topic(), record.offset()
        where = f"topic {topic!r} partition {task.partition} offset {offset}"
        policy = edge.on_decode_error if edge is not None else "fail"
        if policy == "skip":
            task.skipped += 1
            _logger.warning(
                "group %s skipped undecodable message at %s: %s", self.group, where, exc
            )
            return
        if isinstance(policy, DeadLetter):
            values = (str(exc), topic, str(task.partition), str(offset))
            headers = (record.headers() or []) + [
                (name, text.encode())
                for name, text in zip(DEAD_LETTER_HEADERS, values, strict=True)
            ]
            self._core.produce(policy.topic, record.key(), record.value(), headers)
            task.dead_lettered += 1
            _logger.warning(
                "group %s sent undecodable message at %s to %s: %s",
                self.group,
                where,
                policy.topic,
                exc,
            )
            return
        task.defer(topic, offset)  # held back for good: the committed offset stays before it
        raise ProcessorError(
            f"group {self.group!r} cannot decode the message at {where} with codec "
            f"{codec.name!r}: {exc}. No offset is committed past this message; fix the "
            "message, or set on_decode_error='skip' or goka.dead_letter(topic) on the input"
        ) from exc


def header_list(headers: Mapping[str, bytes | str] | None) -> Headers | None:
    """Headers as a record keeps them; str values are encoded as UTF-8."""
    if not headers:
        return None
    result: Headers = []
    for name, value in headers.items():
        if isinstance(value, str):
            value = value.encode()
        if not isinstance(name, str) or not isinstance(value, bytes):
            raise ConfigError(
                f"header {name!r}: names must be str and values bytes, got {type(value).__name__}"
            )
        result.append((name, value))
    return result
