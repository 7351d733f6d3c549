"""A processor's group-table partitions as a ``LocalTable``: active ones it owns and hot
standbys, read from their local stores while the processor runs (see ``goka.local_table``)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from goka.changes import ChangeFeed
from goka.errors import StorageError
from goka.local_table import HeldPartition, PartitionNotHeld, PartitionState, TableMeta
from goka.storage import Storage

if TYPE_CHECKING:
    from goka.processor import Processor

__all__ = ["ProcessorTable", "held_partition"]


def held_partition(partition: int, info: dict[str, Any]) -> HeldPartition:
    """One entry of ``Processor.stats()["partitions"]`` as a held partition."""
    standby = info["state"] == "standby"
    running = info.get("caught_up") if standby else info["state"] == "running"
    state: PartitionState = "running" if running else "recovering"
    table = info.get("table", {})
    offset, lag = table.get("offset"), table.get("lag")
    return HeldPartition(
        partition=partition,
        kind="standby" if standby else "active",
        state=state,
        applied_offset=-1 if offset is None else offset,
        lag=-1 if lag is None else lag,
    )


class ProcessorTable:
    def __init__(self, processor: Processor) -> None:
        self._processor = processor

    @property
    def meta(self) -> TableMeta | None:
        processor = self._processor
        graph = processor.graph
        if graph.table is None or graph.persist is None or not processor.partition_count:
            return None
        return TableMeta(
            name=graph.table,
            key_codec="string",
            value_codec=graph.persist.codec.name,
            partitioner=processor.partitioner,
            partition_count=processor.partition_count,
        )

    def held(self) -> dict[int, HeldPartition]:
        if self._processor.graph.table is None:
            return {}
        partitions = self._processor.stats()["partitions"]
        return {
            p: held_partition(p, info) for p, info in partitions.items() if info["state"] != "split"
        }

    def _store(self, partition: int) -> Storage:
        assignment = self._processor._assignment
        store = assignment.table_store(partition) if assignment is not None else None
        if store is None:
            raise PartitionNotHeld(f"partition {partition} is not held by this processor")
        return store

    def read(self, partition: int, keys: Sequence[bytes]) -> tuple[list[bytes | None], int]:
        try:
            values, offset = self._store(partition).read(keys)
        except StorageError as exc:  # released while we read
            raise PartitionNotHeld(f"partition {partition} was released: {exc}") from exc
        return values, -1 if offset is None else offset

    def items(
        self, partition: int, start: bytes | None, end: bytes | None
    ) -> Iterator[tuple[bytes, bytes]]:
        try:
            yield from self._store(partition).items(start, end)
        except StorageError as exc:
            raise PartitionNotHeld(f"partition {partition} was released: {exc}") from exc

    @property
    def input_topics(self) -> frozenset[str]:
        graph = self._processor.graph
        loop = [graph.loop_topic] if graph.loop_topic is not None else []
        return frozenset([*(edge.topic for edge in graph.inputs), *loop])

    def unreachable_for(self) -> float:
        return self._processor.reachability.unreachable_for()

    def changes(self, partition: int) -> ChangeFeed | None:
        return self._processor.changes.get(partition)

    def processed_offset(self, partition: int, topic: str) -> int | None:
        assignment = self._processor._assignment
        task = assignment.tasks.get(partition) if assignment is not None else None
        if task is None or task.state != "running":
            return None
        return task.next_input.get(topic)
