"""The Tester: processor groups run synchronously over in-memory topics, without Kafka."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, TypeVar, overload

from goka._delivery import Delivery
from goka._host import header_list
from goka.codec import Codec
from goka.errors import ConfigError, TopicError
from goka.graph import DeadLetter, GroupGraph, _check_name
from goka.tester._core import Core
from goka.tester._runner import GroupRunner
from goka.tester._tables import TableHandle, TesterView
from goka.tester._tracker import OutputTracker

__all__ = ["Tester", "TesterProcessor"]

T = TypeVar("T")


class TesterProcessor:
    """A group running in a :class:`Tester` (returned by ``Tester.add_processor``)."""

    __test__ = False  # not a pytest test class, though its name starts with "Test"

    def __init__(self, core: Core, runner: GroupRunner) -> None:
        self._core = core
        self._runner = runner

    @property
    def group(self) -> str:
        return self._runner.group

    @property
    def graph(self) -> GroupGraph:
        return self._runner.graph

    @property
    def partitions(self) -> int:
        """The partition count of the group's inputs and table."""
        return len(self._runner.tasks)

    @property
    def skipped(self) -> int:
        """Undecodable input messages skipped (``on_decode_error="skip"``)."""
        return sum(task.skipped for task in self._runner.tasks)

    @property
    def dead_lettered(self) -> int:
        """Undecodable input messages sent to a dead-letter topic."""
        return sum(task.dead_lettered for task in self._runner.tasks)

    def visit_all(self, name: str, meta: Any = None) -> int:
        """Run the visitor ``name`` (``goka.visitor``) as ``callback(ctx, meta)`` for every key
        of the group table: partition by partition, keys in order. Writes, emits and
        loopbacks take effect as from input callbacks (cascades included). Returns the number
        of keys visited; raises ConfigError for an unknown visitor and ProcessorError when a
        callback fails (the keys after it are not visited)."""
        self._core.raise_failure()
        visited = self._runner.visit(name, meta)
        self._core.drain()
        return visited

    def __repr__(self) -> str:
        return f"TesterProcessor({self.group!r}, partitions={self.partitions})"


class Tester:
    """Runs processor groups without Kafka, as Goka's tester does: ``consume`` puts a message
    into a topic and returns once every registered group has processed it and everything
    it caused (emits to other groups' inputs, loopbacks), in the order it was written.

    Args:
        partitions: partition count of topics used without being declared (default 1);
            declare others with :meth:`topic`. A group's table and loop topic get the
            partition count of its inputs.
        partitioner: ``"murmur2"`` (default) or ``"fnv1a"``; decides every key's partition,
            as on the processor.
        max_cascade: most messages one call may process before it stops with ProcessorError
            (default 100,000), a guard against groups feeding each other forever.

    The same calls give the same partitions and offsets. A failing callback raises
    ProcessorError from ``consume`` (or ``add_processor``, ``visit_all``); its writes and
    emits are dropped, the message is not retried, and the group's committed offset stays
    before it, as a stopped processor's would. Messages still pending then are processed by
    the next call.
    """

    __test__ = False  # not a pytest test class, though its name starts with "Test"

    def __init__(
        self, *, partitions: int = 1, partitioner: str = "murmur2", max_cascade: int = 100_000
    ) -> None:
        if type(partitions) is not int or partitions < 1:
            raise ConfigError(f"partitions must be an int >= 1, got {partitions!r}")
        if type(max_cascade) is not int or max_cascade < 1:
            raise ConfigError(f"max_cascade must be an int >= 1, got {max_cascade!r}")
        self._core = Core(partitions, partitioner, max_cascade)

    def topic(self, name: str, *, partitions: int) -> None:
        """Declare the partition count of topic (or table) ``name`` before its first use.

        Raises TopicError if it is already in use with another count.
        """
        self._core.topics.declare(_check_name("topic", name), partitions)

    def add_processor(self, graph: GroupGraph) -> TesterProcessor:
        """Register the group of ``graph`` and process what its inputs already hold.

        Checked as the processor does: inputs, loop topic, joined tables and the group table
        must have one partition count (TopicError otherwise); topics not used yet are created
        with it. Output and dead-letter topics not used yet get the default count.
        """
        if not isinstance(graph, GroupGraph):
            raise ConfigError(
                f"graph must come from goka.define_group(...), got {type(graph).__name__}"
            )
        core = self._core
        if graph.group in core.groups:
            raise ConfigError(
                f"group {graph.group!r} is already added to this tester; add a group once"
            )
        copartitioned = list(graph.copartitioned)
        if graph.table is not None:
            copartitioned.append(graph.table)
        counts = {topic: core.topics.count(topic) for topic in copartitioned}
        known = {topic: count for topic, count in counts.items() if count is not None}
        if len(set(known.values())) > 1:
            listing = ", ".join(f"{topic!r} has {count}" for topic, count in known.items())
            raise TopicError(
                f"group {graph.group!r} is not co-partitioned: {listing} partitions; its "
                "inputs, loop topic, joined tables and table need the same count. Declare "
                "them with tester.topic(name, partitions=N) before their first use"
            )
        partitions = next(iter(known.values()), core.topics.default_partitions)
        for topic in copartitioned:
            core.topics.ensure(topic, partitions, purpose=f"group {graph.group!r}")
        for output in graph.outputs:
            core.topics.ensure(output.topic)
        for policy in (edge.on_decode_error for edge in graph.inputs):
            if isinstance(policy, DeadLetter):
                core.topics.ensure(policy.topic)
        if graph.persist is not None and graph.table is not None:
            core.table_codecs[graph.table] = graph.persist.codec
        for join in graph.joins:
            core.table_codecs.setdefault(join.table, join.codec)
        for lookup in graph.lookups:
            core.table_codecs.setdefault(lookup.table, lookup.codec)
        runner = GroupRunner(core, graph, partitions)
        core.groups[graph.group] = runner
        core.drain()
        return TesterProcessor(core, runner)

    def consume(
        self,
        topic: str,
        key: str,
        value: Any,
        *,
        headers: Mapping[str, bytes] | None = None,
        timestamp: datetime | None = None,
    ) -> Delivery:
        """Put a message into ``topic`` and run the groups until nothing is pending.

        ``value`` is encoded with the codec of a registered input of ``topic``; ``bytes`` are
        put as they are (e.g. to test decode errors) and None is a tombstone. ``timestamp``
        (timezone-aware) defaults to now. Returns where the message was written. Raises
        ProcessorError if a group fails, or if a deferred commit failed since the last call.
        """
        core = self._core
        core.raise_failure()
        if not isinstance(key, str):
            raise ConfigError(f"consume({topic!r}): key must be str, got {type(key).__name__}")
        _check_name("topic", topic)
        if value is None or isinstance(value, bytes):
            encoded = value
        else:
            codec = core.input_codec(topic)
            if codec is None:
                raise ConfigError(
                    f"no group added to the tester consumes topic {topic!r}, so its codec is "
                    "unknown: add the processor first, or pass the value encoded as bytes"
                )
            encoded = codec.encode(value)
        timestamp_ms = None
        if timestamp is not None:
            if timestamp.tzinfo is None:
                raise ConfigError(
                    "timestamp must be timezone-aware, e.g. datetime(2024, 1, 1, tzinfo=UTC)"
                )
            timestamp_ms = round(timestamp.timestamp() * 1000)
        record = core.produce(
            topic, key.encode(), encoded, header_list(headers), timestamp_ms=timestamp_ms
        )
        core.drain()
        return Delivery(record.partition(), record.offset())

    def committed(self, group: str, topic: str, partition: int) -> int | None:
        """The offset ``group`` has committed in ``topic`` ``partition`` (the next message
        it would read after a restart); None before it processed anything there.

        It stays before the first message with a ``ctx.defer_commit()`` completion not yet
        called, and before any message whose processing failed.
        """
        runner = self._core.groups.get(group)
        if runner is None:
            raise ConfigError(
                f"group {group!r} is not added to the tester (added: {sorted(self._core.groups)})"
            )
        if not runner.is_input(topic):
            raise ConfigError(f"topic {topic!r} is not an input (or the loop) of group {group!r}")
        if type(partition) is not int or not 0 <= partition < len(runner.tasks):
            raise ConfigError(
                f"{topic!r} has partitions 0..{len(runner.tasks) - 1}, not {partition!r}"
            )
        return runner.tasks[partition].commit_offsets().get(topic)

    @overload
    def table(self, table: str) -> TableHandle[Any]: ...

    @overload
    def table(self, table: str, codec: Codec[T]) -> TableHandle[T]: ...

    def table(self, table: str, codec: Codec[Any] | None = None) -> TableHandle[Any]:
        """Read and write ``table`` in a test. ``codec`` defaults to the codec of the group
        that persists it (or joins or looks it up); a codec given here is remembered."""
        core = self._core
        _check_name("table", table)
        if codec is None:
            known = core.table_codecs.get(table)
            if known is None:
                raise ConfigError(
                    f"the tester does not know the codec of table {table!r}: add the group "
                    f"that persists it first, or pass one: tester.table({table!r}, codec)"
                )
            return TableHandle(core, table, known)
        core.table_codecs.setdefault(table, codec)
        return TableHandle(core, table, codec)

    def view(self, table: str, codec: Codec[T]) -> TesterView[T]:
        """A :class:`goka.View` look-alike of ``table``; the table must exist in the tester."""
        return TesterView(self._core, table, codec)

    def output_tracker(self, topic: str, codec: Codec[Any] | None = None) -> OutputTracker:
        """Follow ``topic`` from its current end. ``codec`` defaults to the codec of the
        output (or loop, table or input) edge of a registered group using the topic."""
        return OutputTracker(self._core, _check_name("topic", topic), codec)
