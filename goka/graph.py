"""The declarative description of a processor group, as in Goka's ``DefineGroup``.

    graph = define_group(
        "clicks-counter",
        input("clicks", codec.String(), count_click),
        output("alerts", codec.JSON()),
        persist(codec.Int64()),
    )

The group's state lives in the compacted topic ``<group>-table``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, NewType

from goka._config import check_legal_name
from goka.codec import Codec, check_codec
from goka.errors import ConfigError

if TYPE_CHECKING:
    from goka.context import Context

__all__ = [
    "Callback",
    "DeadLetter",
    "DecodeErrorPolicy",
    "Group",
    "GroupGraph",
    "InputEdge",
    "JoinEdge",
    "LookupEdge",
    "LoopEdge",
    "OutputEdge",
    "PersistEdge",
    "Stream",
    "Table",
    "VisitorEdge",
    "dead_letter",
    "define_group",
    "group_table",
    "input",
    "join",
    "lookup",
    "loop",
    "loop_topic",
    "output",
    "persist",
    "visitor",
]

Group = NewType("Group", str)
Stream = NewType("Stream", str)
Table = NewType("Table", str)

Callback = Callable[["Context", Any], None]
"""A processor callback: ``callback(ctx, msg)`` with the decoded input message."""


def _check_name(kind: str, name: object) -> str:
    return check_legal_name(f"{kind} name", name, "topic name")


def group_table(group: str) -> Table:
    """The table topic of a group: ``<group>-table``."""
    return Table(f"{group}-table")


def loop_topic(group: str) -> Stream:
    """The loopback topic of a group: ``<group>-loop``."""
    return Stream(f"{group}-loop")


def _check_callback(where: str, callback: object) -> None:
    if not callable(callback):
        raise ConfigError(f"{where}: callback {callback!r} is not callable")


@dataclass(frozen=True)
class DeadLetter:
    """Decode-error policy: send the undecodable message, as it was, to ``topic``."""

    topic: Stream


DecodeErrorPolicy = Literal["fail", "skip"] | DeadLetter
"""What a processor does with an input message its codec cannot decode: ``"fail"`` stops
the processor (nothing committed past the message), ``"skip"`` logs and counts it, and
``dead_letter(topic)`` forwards the raw message to ``topic`` with headers naming the source
and the error."""


def dead_letter(topic: str) -> DeadLetter:
    """Decode-error policy that forwards undecodable messages to ``topic`` (it must exist)."""
    return DeadLetter(Stream(_check_name("dead-letter topic", topic)))


@dataclass(frozen=True)
class InputEdge:
    topic: Stream
    codec: Codec[Any]
    callback: Callback
    on_decode_error: DecodeErrorPolicy = "fail"


@dataclass(frozen=True)
class OutputEdge:
    topic: Stream
    codec: Codec[Any]


@dataclass(frozen=True)
class PersistEdge:
    codec: Codec[Any]


@dataclass(frozen=True)
class LoopEdge:
    codec: Codec[Any]
    callback: Callback


@dataclass(frozen=True)
class JoinEdge:
    table: Table
    codec: Codec[Any]


@dataclass(frozen=True)
class LookupEdge:
    table: Table
    codec: Codec[Any]


@dataclass(frozen=True)
class VisitorEdge:
    name: str
    callback: Callback


Edge = InputEdge | OutputEdge | PersistEdge | LoopEdge | JoinEdge | LookupEdge | VisitorEdge


def input(  # noqa: A001 - Goka's name
    topic: str,
    codec: Codec[Any],
    callback: Callback,
    *,
    on_decode_error: DecodeErrorPolicy = "fail",
) -> InputEdge:
    """Consume ``topic``, decode each message with ``codec`` and call ``callback(ctx, msg)``.

    ``on_decode_error``: ``"fail"`` (default), ``"skip"`` or ``goka.dead_letter(topic)``.
    """
    name = _check_name("input topic", topic)
    check_codec(f"input({name!r})", codec)
    _check_callback(f"input({name!r})", callback)
    if on_decode_error not in ("fail", "skip") and not isinstance(on_decode_error, DeadLetter):
        raise ConfigError(
            f"input({name!r}): on_decode_error={on_decode_error!r} is not a policy; use "
            "'fail', 'skip' or goka.dead_letter(topic)"
        )
    return InputEdge(Stream(name), codec, callback, on_decode_error)


def output(topic: str, codec: Codec[Any]) -> OutputEdge:
    """Allow ``ctx.emit(topic, key, value)``, encoding values with ``codec``."""
    name = _check_name("output topic", topic)
    check_codec(f"output({name!r})", codec)
    return OutputEdge(Stream(name), codec)


def persist(codec: Codec[Any]) -> PersistEdge:
    """Give the group a table (``<group>-table``) whose values are encoded with ``codec``."""
    check_codec("persist()", codec)
    return PersistEdge(codec)


def loop(codec: Codec[Any], callback: Callback) -> LoopEdge:
    """Allow ``ctx.loopback(key, value)``: messages go through ``<group>-loop`` (created with
    the inputs' partition count) and come back to ``callback(ctx, msg)``."""
    check_codec("loop()", codec)
    _check_callback("loop()", callback)
    return LoopEdge(codec, callback)


def join(table: str, codec: Codec[Any]) -> JoinEdge:
    """Allow ``ctx.join(table)``: the current key's value in ``table``, another group's table
    co-partitioned with the inputs (same partition count and partitioner)."""
    name = _check_name("join table", table)
    check_codec(f"join({name!r})", codec)
    return JoinEdge(Table(name), codec)


def lookup(table: str, codec: Codec[Any]) -> LookupEdge:
    """Allow ``ctx.lookup(table, key)`` for any key: the processor keeps a full view of it."""
    name = _check_name("lookup table", table)
    check_codec(f"lookup({name!r})", codec)
    return LookupEdge(Table(name), codec)


def visitor(name: str, callback: Callback) -> VisitorEdge:
    """Allow ``Processor.visit_all(name, meta)``: ``callback(ctx, meta)`` for every key."""
    if not isinstance(name, str) or not name:
        raise ConfigError(f"visitor name must be a non-empty string, got {name!r}")
    _check_callback(f"visitor({name!r})", callback)
    return VisitorEdge(name, callback)


@dataclass(frozen=True)
class GroupGraph:
    """A validated group definition; build it with :func:`define_group`."""

    group: Group
    inputs: tuple[InputEdge, ...]
    outputs: tuple[OutputEdge, ...] = ()
    persist: PersistEdge | None = None
    loop: LoopEdge | None = None
    joins: tuple[JoinEdge, ...] = ()
    lookups: tuple[LookupEdge, ...] = ()
    visitors: tuple[VisitorEdge, ...] = ()

    @property
    def table(self) -> Table | None:
        """The group table topic, or None when the group has no ``persist`` edge."""
        return group_table(self.group) if self.persist is not None else None

    @property
    def loop_topic(self) -> Stream | None:
        """The loopback topic, or None when the group has no ``loop`` edge."""
        return loop_topic(self.group) if self.loop is not None else None

    @property
    def copartitioned(self) -> list[str]:
        """Every topic whose partition N this group's partition N reads: inputs, loop, joins."""
        topics: list[str] = [edge.topic for edge in self.inputs]
        if self.loop_topic is not None:
            topics.append(self.loop_topic)
        topics += [edge.table for edge in self.joins]
        return topics


def define_group(group: str, *edges: Edge) -> GroupGraph:
    """Define a processor group from its edges; raises ConfigError on an invalid graph.

    Rules (as in Goka): at least one ``input``, at most one ``persist`` and one ``loop``,
    every topic and visitor name used once, and no edge may use the group's own table or loop
    topic.
    """
    name = Group(_check_name("group", group))
    found: dict[type, list[Any]] = {kind: [] for kind in _EDGE_KINDS}
    for edge in edges:
        if type(edge) not in found:
            raise ConfigError(
                f"define_group({group!r}): {edge!r} is not an edge; use goka.input, output, "
                "persist, loop, join, lookup or visitor"
            )
        found[type(edge)].append(edge)
    if not found[InputEdge]:
        raise ConfigError(
            f"group {group!r} has no input: add goka.input(topic, codec, callback) to define_group"
        )
    for single, label in ((PersistEdge, "persist"), (LoopEdge, "loop")):
        if len(found[single]) > 1:
            raise ConfigError(
                f"group {group!r} has {len(found[single])} {label} edges; at most one"
            )
    own = {str(group_table(name)): "table", str(loop_topic(name)): "loop topic"}
    seen: set[str] = set()
    named = [(str(e.topic), "input") for e in found[InputEdge]]
    named += [(str(e.topic), "output") for e in found[OutputEdge]]
    named += [(str(e.table), "join") for e in found[JoinEdge]]
    named += [(str(e.table), "lookup") for e in found[LookupEdge]]
    for topic, kind in named:
        if topic in own:
            fix = "ctx.set_value" if own[topic] == "table" else "ctx.loopback"
            raise ConfigError(
                f"group {group!r}: topic {topic!r} is the group's own {own[topic]}; "
                f"use {fix}, not an {kind} edge"
            )
        if topic in seen:
            raise ConfigError(f"group {group!r}: topic {topic!r} is declared twice")
        seen.add(topic)
    visitor_names = [edge.name for edge in found[VisitorEdge]]
    if len(set(visitor_names)) != len(visitor_names):
        raise ConfigError(f"group {group!r}: visitor names {visitor_names} are not unique")
    return GroupGraph(
        group=name,
        inputs=tuple(found[InputEdge]),
        outputs=tuple(found[OutputEdge]),
        persist=found[PersistEdge][0] if found[PersistEdge] else None,
        loop=found[LoopEdge][0] if found[LoopEdge] else None,
        joins=tuple(found[JoinEdge]),
        lookups=tuple(found[LookupEdge]),
        visitors=tuple(found[VisitorEdge]),
    )


_EDGE_KINDS = (InputEdge, OutputEdge, PersistEdge, LoopEdge, JoinEdge, LookupEdge, VisitorEdge)
