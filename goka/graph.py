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

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NewType

from goka.codec import Codec
from goka.errors import ConfigError

if TYPE_CHECKING:
    from goka.context import Context

__all__ = [
    "Callback",
    "Group",
    "GroupGraph",
    "InputEdge",
    "OutputEdge",
    "PersistEdge",
    "Stream",
    "Table",
    "define_group",
    "group_table",
    "input",
    "output",
    "persist",
]

Group = NewType("Group", str)
Stream = NewType("Stream", str)
Table = NewType("Table", str)

Callback = Callable[["Context", Any], None]
"""A processor callback: ``callback(ctx, msg)`` with the decoded input message."""

_TOPIC_NAME = re.compile(r"^[a-zA-Z0-9._-]{1,249}$")


def _check_name(kind: str, name: object) -> str:
    if not isinstance(name, str) or not _TOPIC_NAME.match(name) or name in (".", ".."):
        raise ConfigError(
            f"{kind} name {name!r} is not a valid Kafka topic name: use 1-249 characters "
            "from a-z, A-Z, 0-9, '.', '_' and '-'"
        )
    return name


def _check_codec(where: str, codec: object) -> None:
    has_methods = hasattr(codec, "encode") and hasattr(codec, "decode") and hasattr(codec, "name")
    if isinstance(codec, type) or not has_methods:  # a class (codec.String) is no instance
        raise ConfigError(
            f"{where}: {codec!r} is not a codec; pass an instance such as goka.codec.String()"
        )


def group_table(group: str) -> Table:
    """The table topic of a group: ``<group>-table``."""
    return Table(f"{group}-table")


@dataclass(frozen=True)
class InputEdge:
    topic: Stream
    codec: Codec[Any]
    callback: Callback


@dataclass(frozen=True)
class OutputEdge:
    topic: Stream
    codec: Codec[Any]


@dataclass(frozen=True)
class PersistEdge:
    codec: Codec[Any]


Edge = InputEdge | OutputEdge | PersistEdge


def input(topic: str, codec: Codec[Any], callback: Callback) -> InputEdge:  # noqa: A001
    """Consume ``topic``, decode each message with ``codec`` and call ``callback(ctx, msg)``."""
    name = _check_name("input topic", topic)
    _check_codec(f"input({name!r})", codec)
    if not callable(callback):
        raise ConfigError(f"input({name!r}): callback {callback!r} is not callable")
    return InputEdge(Stream(name), codec, callback)


def output(topic: str, codec: Codec[Any]) -> OutputEdge:
    """Allow ``ctx.emit(topic, key, value)``, encoding values with ``codec``."""
    name = _check_name("output topic", topic)
    _check_codec(f"output({name!r})", codec)
    return OutputEdge(Stream(name), codec)


def persist(codec: Codec[Any]) -> PersistEdge:
    """Give the group a table (``<group>-table``) whose values are encoded with ``codec``."""
    _check_codec("persist()", codec)
    return PersistEdge(codec)


@dataclass(frozen=True)
class GroupGraph:
    """A validated group definition; build it with :func:`define_group`."""

    group: Group
    inputs: tuple[InputEdge, ...]
    outputs: tuple[OutputEdge, ...]
    persist: PersistEdge | None

    @property
    def table(self) -> Table | None:
        """The group table topic, or None when the group has no ``persist`` edge."""
        return group_table(self.group) if self.persist is not None else None

    def input_edge(self, topic: str) -> InputEdge:
        for edge in self.inputs:
            if edge.topic == topic:
                return edge
        raise KeyError(topic)

    def output_edge(self, topic: str) -> OutputEdge | None:
        for edge in self.outputs:
            if edge.topic == topic:
                return edge
        return None


def define_group(group: str, *edges: Edge) -> GroupGraph:
    """Define a processor group from its edges; raises ConfigError on an invalid graph.

    Rules (as in Goka): at least one ``input``, at most one ``persist``, every topic used
    once, and no edge may use the group's own table topic.
    """
    name = Group(_check_name("group", group))
    inputs: list[InputEdge] = []
    outputs: list[OutputEdge] = []
    persists: list[PersistEdge] = []
    for edge in edges:
        if isinstance(edge, InputEdge):
            inputs.append(edge)
        elif isinstance(edge, OutputEdge):
            outputs.append(edge)
        elif isinstance(edge, PersistEdge):
            persists.append(edge)
        else:
            raise ConfigError(
                f"define_group({group!r}): {edge!r} is not an edge; "
                "use goka.input(...), goka.output(...) or goka.persist(...)"
            )
    if not inputs:
        raise ConfigError(
            f"group {group!r} has no input: add goka.input(topic, codec, callback) to define_group"
        )
    if len(persists) > 1:
        raise ConfigError(f"group {group!r} has {len(persists)} persist edges; at most one")
    seen: set[str] = set()
    table = group_table(name)
    topics = [(str(e.topic), "input") for e in inputs]
    topics += [(str(e.topic), "output") for e in outputs]
    for topic, kind in topics:
        if topic == table:
            raise ConfigError(
                f"group {group!r}: topic {topic!r} is the group's own table; "
                f"write to it with ctx.set_value, not as an {kind}"
            )
        if topic in seen:
            raise ConfigError(f"group {group!r}: topic {topic!r} is declared twice")
        seen.add(topic)
    return GroupGraph(name, tuple(inputs), tuple(outputs), persists[0] if persists else None)
