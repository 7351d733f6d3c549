"""The topics a group needs, checked and created before its processor joins the group.

Inputs, loop topic and joined tables must be co-partitioned (same partition count); the group
table is created compacted with that count, the loop topic with it too; looked-up tables,
output and dead-letter topics must exist.
"""

from __future__ import annotations

from goka.errors import TopicError
from goka.graph import DeadLetter, GroupGraph
from goka.topics import TopicManager

__all__ = ["prepare_topics"]

_NEW_TOPIC_GRACE = 3.0
"""Seconds a missing topic is waited for: on a cluster, the broker answering the metadata
request learns of a topic just created (by another client, through the controller) a moment
after the controller confirmed it."""


def _partitions(manager: TopicManager, topic: str) -> int | None:
    """The partition count of ``topic``; None if it does not appear within the grace."""
    try:
        return manager.wait_for(topic, _NEW_TOPIC_GRACE)
    except TopicError:
        return None


def prepare_topics(manager: TopicManager, graph: GroupGraph) -> tuple[int, dict[str, int]]:
    """Checks co-partitioning, creates table and loop topics; returns the partition count
    and the partition counts of every topic the group produces to."""
    group = graph.group
    counts: dict[str, int | None] = {
        edge.topic: _partitions(manager, edge.topic) for edge in graph.inputs
    }
    missing = [topic for topic, count in counts.items() if count is None]
    if missing:
        raise TopicError(
            f"input topics {missing} of group {group!r} do not exist: create them first "
            "(e.g. TopicManager(brokers).ensure_stream(topic, partitions))"
        )
    for edge in graph.joins:
        count = _partitions(manager, edge.table)
        if count is None:
            raise TopicError(
                f"joined table {edge.table!r} of group {group!r} does not exist: start "
                "the processor of its group first"
            )
        counts[edge.table] = count
    for lookup in graph.lookups:  # any partition count; must exist before the views start
        if _partitions(manager, lookup.table) is None:
            raise TopicError(
                f"lookup table {lookup.table!r} of group {group!r} does not exist: start "
                "the processor of its group first"
            )
    if len(set(counts.values())) > 1:
        listing = ", ".join(f"{topic!r} has {count}" for topic, count in counts.items())
        raise TopicError(
            f"the inputs and joined tables of group {group!r} are not co-partitioned: "
            f"{listing} partitions; they need the same partition count"
        )
    partitions = next(iter(counts.values()))
    assert partitions is not None
    if graph.table is not None:
        manager.ensure_table(graph.table, partitions)
    produced: dict[str, int] = {}
    if graph.loop_topic is not None:
        produced[graph.loop_topic] = manager.ensure_stream(graph.loop_topic, partitions)
        if produced[graph.loop_topic] != partitions:
            raise TopicError(
                f"loop topic {graph.loop_topic!r} has "
                f"{produced[graph.loop_topic]} partitions, the inputs {partitions}; "
                "recreate it with the inputs' partition count"
            )
    targets = [(edge.topic, "output") for edge in graph.outputs]
    targets += [
        (edge.on_decode_error.topic, "dead-letter")
        for edge in graph.inputs
        if isinstance(edge.on_decode_error, DeadLetter)
    ]
    for topic, kind in targets:
        count = manager.partitions(topic)
        if count is None:
            raise TopicError(
                f"{kind} topic {topic!r} of group {group!r} does not exist: create it "
                "first (TopicManager(brokers).ensure_stream)"
            )
        produced[topic] = count
    return partitions, produced
