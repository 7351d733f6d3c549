"""What a Context's host does that follows from the group graph alone, shared by the
processor's batch runner and the tester: which topics a callback may emit to, loop back
through, join and look up; the errors that name the fix; deferred-commit completions; and the
headers of a dead-lettered message."""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from typing import Any

from goka._partition import PartitionTask
from goka.codec import Codec
from goka.context import Completion
from goka.errors import CodecError, ConfigError, GokaError, ProcessorError
from goka.graph import Callback, DeadLetter, GroupGraph, InputEdge, OutputEdge

__all__ = ["DEAD_LETTER_HEADERS", "GraphHost", "Headers", "dead_letter_headers", "header_list"]

_logger = logging.getLogger("goka.processor")

Headers = list[tuple[str, bytes | None]]
"""Message headers: names, and values as bytes (None: a null header value)."""

DEAD_LETTER_HEADERS = (
    "goka-error",
    "goka-source-topic",
    "goka-source-partition",
    "goka-source-offset",
)
"""Headers added to a dead-lettered message, after the message's own headers."""


def header_list(headers: Mapping[str, bytes | str] | None) -> Headers | None:
    """Headers as Kafka keeps them; str values are encoded as UTF-8."""
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


def dead_letter_headers(msg: Any, partition: int, error: BaseException) -> Headers:
    """The message's own headers, then the ``goka-*`` headers telling where it came from."""
    own: Headers = list(msg.headers() or [])
    story = (str(error), msg.topic(), str(partition), str(msg.offset()))
    story_headers = zip(DEAD_LETTER_HEADERS, (text.encode() for text in story), strict=True)
    return own + list(story_headers)


class GraphHost:
    """Base of a ContextHost; subclasses say how messages are sent and tables are read."""

    def __init__(self, graph: GroupGraph) -> None:
        self.group: str = graph.group
        self.graph = graph
        self.table_codec: Codec[Any] | None = graph.persist.codec if graph.persist else None
        self._inputs: dict[str, tuple[Codec[Any], Callback, InputEdge | None]] = {
            edge.topic: (edge.codec, edge.callback, edge) for edge in graph.inputs
        }
        if graph.loop is not None and graph.loop_topic is not None:
            self._inputs[graph.loop_topic] = (graph.loop.codec, graph.loop.callback, None)
        self._outputs: dict[str, OutputEdge] = {edge.topic: edge for edge in graph.outputs}
        self._joins: dict[str, Codec[Any]] = {edge.table: edge.codec for edge in graph.joins}
        self._lookups: dict[str, Codec[Any]] = {edge.table: edge.codec for edge in graph.lookups}

    # -- what subclasses provide --------------------------------------------------------

    def _send(
        self, topic: str, raw_key: bytes, value: bytes | None, headers: Headers | None
    ) -> None:
        raise NotImplementedError

    def _join_raw(self, table: str, partition: int, raw_key: bytes) -> bytes | None:
        raise NotImplementedError

    def _lookup(self, table: str, codec: Codec[Any], key: str) -> Any:
        raise NotImplementedError

    def _completion_failed(self, where: str, error: BaseException) -> None:
        raise NotImplementedError

    def fail(self, error: BaseException) -> None:
        raise NotImplementedError

    # -- ContextHost ---------------------------------------------------------------------

    def emit(self, topic: str, key: str, value: Any, headers: Mapping[str, bytes] | None) -> None:
        edge = self._outputs.get(topic)
        if edge is None:
            raise ConfigError(
                f"topic {topic!r} is not configured for output. Did you specify "
                f"goka.output({topic!r}, codec) when defining group {self.group!r}?"
            )
        self._encode_and_send(topic, key, value, edge.codec, headers)

    def loopback(self, key: str, value: Any, headers: Mapping[str, bytes] | None) -> None:
        graph = self.graph
        if graph.loop is None or graph.loop_topic is None:
            raise ConfigError(
                f"group {self.group!r} has no loop: add goka.loop(codec, callback) to "
                "define_group to use ctx.loopback()"
            )
        self._encode_and_send(graph.loop_topic, key, value, graph.loop.codec, headers)

    def join(self, table: str, partition: int, raw_key: bytes) -> Any:
        codec = self._joins.get(table)
        if codec is None:
            raise ConfigError(
                f"table {table!r} is not joined by group {self.group!r}: add "
                f"goka.join({table!r}, codec) to define_group (joined: {sorted(self._joins)})"
            )
        raw = self._join_raw(table, partition, raw_key)
        return None if raw is None else codec.decode(raw)

    def lookup(self, table: str, key: str) -> Any:
        codec = self._lookups.get(table)
        if codec is None:
            raise ConfigError(
                f"table {table!r} is not a lookup of group {self.group!r}: add "
                f"goka.lookup({table!r}, codec) to define_group (lookups: {sorted(self._lookups)})"
            )
        return self._lookup(table, codec, key)

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
                self._completion_failed(where, error)
            else:
                task.complete(topic, offset)

        return done

    def _decode_failed(
        self,
        edge: InputEdge | None,
        task: PartitionTask,
        msg: Any,
        codec: Codec[Any],
        exc: CodecError,
    ) -> ProcessorError | None:
        """Applies the input's decode-error policy: None when the message was skipped or
        dead-lettered, otherwise the error that stops the group at this message."""
        where = f"topic {msg.topic()!r} partition {task.partition} offset {msg.offset()}"
        policy = edge.on_decode_error if edge is not None else "fail"
        if policy == "skip":
            task.skipped += 1
            _logger.warning(
                "group %s skipped undecodable message at %s: %s", self.group, where, exc
            )
            return None
        if isinstance(policy, DeadLetter):
            headers = dead_letter_headers(msg, task.partition, exc)
            self._send(policy.topic, msg.key() or b"", msg.value(), headers)
            task.dead_lettered += 1
            _logger.warning(
                "group %s sent undecodable message at %s to %s: %s",
                self.group,
                where,
                policy.topic,
                exc,
            )
            return None
        error = ProcessorError(
            f"group {self.group!r} cannot decode the message at {where} with codec "
            f"{codec.name!r}: {exc}. No offset is committed past this message; fix the "
            "message, or set on_decode_error='skip' or goka.dead_letter(topic) on the input, "
            "then restart"
        )
        error.__cause__ = exc
        return error

    def _encode_and_send(
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
        self._send(topic, key.encode(), encoded, header_list(headers))
